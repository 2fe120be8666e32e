"""Apply throughput against worker processes and partitions: `python -m benchmarks.scaling`.

For each (workers, partitions) pair it owns everything it measures: a fresh database on the
given PostgreSQL server, a Redis database it flushes, one `ledgerflow serve` process and the
worker processes, all on 127.0.0.1, ended by pid when the pair is done. It accepts a backlog
of postings through the batch endpoint with no worker running, then starts the workers and
times how long they take until nothing is queued. That isolates the apply side:
applied/s = backlog / drain time. Medians over --runs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
from redis import Redis

from benchmarks.e2e import LOOPBACK_HOSTS, key_headers


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def require_loopback(url: str) -> str:
    """Any scheme (postgresql://, redis://), as long as the host is a loopback address."""
    if urlsplit(url).hostname not in LOOPBACK_HOSTS:
        raise SystemExit(f"{url}: only servers on 127.0.0.1 / localhost are measured")
    return url


class Stack:
    """The processes of one configuration, started here and ended here by pid."""

    def __init__(self, env: dict[str, str], workers: int) -> None:
        self.env = env
        self.workers = workers
        self.processes: list[subprocess.Popen[bytes]] = []
        self.url = f"http://127.0.0.1:{free_port()}"

    def _spawn(self, *args: str) -> None:
        command = [sys.executable, "-m", "ledgerflow", *args]
        self.processes.append(
            subprocess.Popen(
                command, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )

    def start_api(self) -> None:
        port = urlsplit(self.url).port
        self._spawn("serve", "--host", "127.0.0.1", "--port", str(port))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise SystemExit("ledgerflow serve did not start within 30 s")

    def start_workers(self) -> None:
        for _ in range(self.workers):
            self._spawn("worker")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()


def fresh_database(admin_url: str, name: str) -> str:
    with psycopg.connect(f"{admin_url}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {name}")
    return f"{admin_url}/{name}"


def accept_backlog(url: str, postings: int, accounts: int) -> None:
    rng = random.Random(postings)
    with httpx.Client(base_url=url, timeout=120, headers=key_headers()) as client:
        ids = [
            client.post(
                "/api/v1/accounts",
                json={"name": f"s{i}", "account_type": "asset", "currency": "USD"},
            ).json()["id"]
            for i in range(accounts)
        ]
        for start in range(0, postings, 1000):
            items = []
            for _ in range(min(1000, postings - start)):
                debit, credit = rng.sample(ids, 2)
                items.append(
                    {
                        "idempotency_key": uuid.uuid4().hex,
                        "currency": "USD",
                        "entries": [
                            {"account_id": debit, "direction": "debit", "amount": "1.00"},
                            {"account_id": credit, "direction": "credit", "amount": "1.00"},
                        ],
                    }
                )
            response = client.post("/api/v1/transactions/batch", json={"transactions": items})
            response.raise_for_status()


def drain_seconds(url: str, backlog: int, timeout_s: float) -> float:
    """From the first applied posting (worker start-up excluded) until nothing is queued.

    The drain starts after the last poll that still saw the whole backlog, so a backlog
    applied between two polls counts the time between them (an upper bound), never 0.
    """
    deadline = time.perf_counter() + timeout_s
    whole_backlog_seen = time.perf_counter()
    with httpx.Client(base_url=url, timeout=30, headers=key_headers()) as client:
        while True:
            queued = client.get("/api/v1/ops/partitions").json()["queued"]
            now = time.perf_counter()
            if queued >= backlog:
                whole_backlog_seen = now
            if queued == 0:
                return now - whole_backlog_seen
            if now > deadline:
                raise SystemExit(f"not drained within {timeout_s} s")
            time.sleep(0.02)


def measure(args: argparse.Namespace, workers: int, partitions: int) -> float:
    database = fresh_database(args.postgres, "ledgerflow_scaling")
    env = dict(os.environ) | {
        "LEDGERFLOW_DATABASE_URL": database,
        "LEDGERFLOW_REDIS_URL": args.redis,
        "LEDGERFLOW_PARTITIONS": str(partitions),
    }
    subprocess.run(
        [sys.executable, "-m", "ledgerflow", "migrate"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # The scratch database's own key, for this process's requests (key_headers).
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "ledgerflow",
            "keys",
            "create",
            "--client",
            "scaling",
            "--json",
            "--scopes",
            "postings:write,ledger:read,accounts:write,ops",
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    os.environ["LEDGERFLOW_API_KEY"] = json.loads(created.stdout)["secret"]
    Redis.from_url(args.redis).flushdb()
    stack = Stack(env, workers)
    try:
        stack.start_api()
        accept_backlog(stack.url, args.postings, args.accounts)
        stack.start_workers()
        postings: int = args.postings
        return postings / drain_seconds(stack.url, postings, args.timeout_s)
    finally:
        stack.stop()


def table(results: dict[str, Any], workers: list[int], partitions: list[int]) -> str:
    lines = [
        "| workers \\ partitions | " + " | ".join(str(p) for p in partitions) + " |",
        "|---|" + "---|" * len(partitions),
    ]
    for w in workers:
        cells = [f"{results[f'{w}x{p}']:,.0f}" for p in partitions]
        lines.append(f"| {w} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default="postgresql://root@127.0.0.1:5432")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--partitions", default="1,4,16,64")
    parser.add_argument("--postings", type=int, default=20000)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout-s", type=float, default=300)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/scaling.json"))
    args = parser.parse_args()
    require_loopback(args.postgres)
    require_loopback(args.redis)
    workers = [int(w) for w in args.workers.split(",")]
    partitions = [int(p) for p in args.partitions.split(",")]
    results: dict[str, Any] = {}
    for w in workers:
        for p in partitions:
            rates = [measure(args, w, p) for _ in range(args.runs)]
            results[f"{w}x{p}"] = statistics.median(rates)
            print(
                f"workers={w} partitions={p}: {results[f'{w}x{p}']:,.0f} applied/s "
                f"(runs: {', '.join(f'{r:,.0f}' for r in rates)})",
                file=sys.stderr,
                flush=True,
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"postings": args.postings, "applied_per_s": results}, indent=2))
    print(table(results, workers, partitions))


if __name__ == "__main__":
    main()
