"""Steady load for minutes, watching memory: `python -m benchmarks.soak`.

Drives an already running service on 127.0.0.1 with single posting requests at a fixed
rate for `--duration-s`, and every `--sample-s` records the resident memory (RSS, from
/proc) of the processes named by `--pid` (the API and worker processes the operator
started) and the lag the service reports. It starts nothing. The report says whether RSS
stayed flat (last sample within `--tolerance` of the first after warm-up) and whether the
applied count kept up (queued stays bounded).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from benchmarks.e2e import key_headers, loopback_url


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def open_accounts(client: httpx.AsyncClient, count: int) -> list[str]:
    async def one(i: int) -> str:
        body = {"name": f"soak{i}", "account_type": "asset", "currency": "USD"}
        response = await client.post("/api/v1/accounts", json=body)
        response.raise_for_status()
        return str(response.json()["id"])

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def send_at_rate(
    client: httpx.AsyncClient,
    accounts: list[str],
    *,
    rate: float,
    until: float,
    counts: dict[str, int],
    connections: int,
) -> None:
    """Open-loop sender: one request every 1/rate seconds, `connections` in flight at most."""
    rng = random.Random(7)
    slots = asyncio.Semaphore(connections)
    tasks: set[asyncio.Task[None]] = set()

    async def post() -> None:
        debit, credit = rng.sample(accounts, 2)
        body = {
            "idempotency_key": uuid.uuid4().hex,
            "currency": "USD",
            "entries": [
                {"account_id": debit, "direction": "debit", "amount": "1.00"},
                {"account_id": credit, "direction": "credit", "amount": "1.00"},
            ],
        }
        try:
            response = await client.post("/api/v1/transactions", json=body)
            key = "accepted" if response.status_code == 202 else f"http_{response.status_code}"
            counts[key] = counts.get(key, 0) + 1
        except httpx.HTTPError as error:
            counts[type(error).__name__] = counts.get(type(error).__name__, 0) + 1
        finally:
            slots.release()

    next_at = time.monotonic()
    while time.monotonic() < until:
        await slots.acquire()
        task = asyncio.create_task(post())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        next_at += 1 / rate
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    await asyncio.gather(*tasks)


async def sample(
    client: httpx.AsyncClient, pids: list[int], every_s: float, until: float
) -> list[dict[str, Any]]:
    samples = []
    started = time.monotonic()
    while time.monotonic() < until:
        lag = (await client.get("/api/v1/ops/partitions")).json()
        samples.append(
            {
                "t_s": round(time.monotonic() - started, 1),
                "queued": lag["queued"],
                "rss_mib": {str(pid): round(rss_mib(pid), 1) for pid in pids},
            }
        )
        print(json.dumps(samples[-1]), file=sys.stderr, flush=True)
        await asyncio.sleep(every_s)
    return samples


def verdict(samples: list[dict[str, Any]], pids: list[int], tolerance: float) -> dict[str, Any]:
    warm = samples[len(samples) // 5] if len(samples) > 5 else samples[0]
    last = samples[-1]
    growth = {
        pid: round(last["rss_mib"][str(pid)] / max(warm["rss_mib"][str(pid)], 0.1) - 1, 3)
        for pid in pids
    }
    return {
        "rss_growth_after_warmup": growth,
        "rss_flat": all(g <= tolerance for g in growth.values()),
        "queued_max": max(s["queued"] for s in samples),
        "queued_last": last["queued"],
    }


def sender_process(
    url: str, accounts: list[str], rate: float, duration_s: float, connections: int
) -> dict[str, int]:
    """One sender process's share of the load: its own event loop, client and counts."""

    async def send() -> dict[str, int]:
        limits = httpx.Limits(max_connections=connections + 4)
        counts: dict[str, int] = {}
        async with httpx.AsyncClient(
            base_url=url, timeout=30, limits=limits, headers=key_headers()
        ) as client:
            await send_at_rate(
                client,
                accounts,
                rate=rate,
                until=time.monotonic() + duration_s,
                counts=counts,
                connections=connections,
            )
        return counts

    return asyncio.run(send())


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Open accounts, then `--senders` processes share the rate while this one samples.

    One Python process with an HTTP client tops out near the rates measured here, so the
    load is split over processes; each sends rate / senders requests per second.
    """
    async with httpx.AsyncClient(base_url=args.url, timeout=30, headers=key_headers()) as client:
        accounts = await open_accounts(client, args.accounts)
        until = time.monotonic() + args.duration_s
        loop = asyncio.get_running_loop()
        with ProcessPoolExecutor(args.senders) as pool:
            sending = [
                loop.run_in_executor(
                    pool,
                    sender_process,
                    args.url,
                    accounts,
                    args.rate / args.senders,
                    args.duration_s,
                    max(1, args.connections // args.senders),
                )
                for _ in range(args.senders)
            ]
            samples = await sample(client, args.pid, args.sample_s, until)
            shares = await asyncio.gather(*sending)
    counts: dict[str, int] = {}
    for share in shares:
        for key, count in share.items():
            counts[key] = counts.get(key, 0) + count
    return {
        "rate": args.rate,
        "senders": args.senders,
        "duration_s": args.duration_s,
        "answers": counts,
        "samples": samples,
        **verdict(samples, args.pid, args.tolerance),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--duration-s", type=float, default=600)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=64, help="in all senders")
    parser.add_argument("--senders", type=int, default=2, help="sender processes")
    parser.add_argument("--sample-s", type=float, default=10)
    parser.add_argument("--pid", type=int, action="append", default=[], help="process to watch")
    parser.add_argument("--tolerance", type=float, default=0.10)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/soak.json"))
    args = parser.parse_args()
    try:
        args.url = loopback_url(args.url)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    report = asyncio.run(run(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    summary = {k: v for k, v in report.items() if k != "samples"}
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
