"""End-to-end benchmark of a running LedgerFlow service: accept postings, then apply them.

One run of one mode opens fresh USD accounts (wallets plus one settlement account), submits
`postings` transfers of "1.00" from a random wallet to another random wallet, one per request
("single") or 1,000 per request ("batch"), and records how long each request took to be
accepted. It then polls every accepted key's status URL (`?wait=30`) until the posting is
final. It starts no service and drives only a loopback address. Every phase stops at one
shared deadline and keeps what it has measured, so a stalled service still gives a report,
and no run sends more than `postings` postings.
"""

from __future__ import annotations

import asyncio
import importlib.util
import math
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

API_PREFIX = "/api/v1"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
CURRENCY = "USD"
AMOUNT = "1.00"
BATCH_SIZE = 1000
BATCH_CONCURRENCY = 4
POLL_WAIT_S = 30
POLL_ERRORS_MAX = 3
DRAIN_POLL_S = 0.05
STATUS_SAMPLE = 500
REQUEST_TIMEOUT_S = POLL_WAIT_S + 30.0
CONNECT_TIMEOUT_S = 10.0
FINAL_STATUSES = ("posted", "rejected", "failed")

Mode = Literal["single", "batch"]
Figures = dict[str, Any]


class BenchmarkError(Exception):
    """Raised when the service cannot be benchmarked: unreachable, or it refuses the set-up."""


def loopback_url(url: str) -> str:
    """The URL without its trailing slash; ValueError unless http(s) on a loopback host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.hostname not in LOOPBACK_HOSTS:
        raise ValueError(f"{url!r}: only http(s) on 127.0.0.1, localhost or [::1] is driven")
    return url.rstrip("/")


@dataclass(frozen=True)
class Workload:
    url: str
    postings: int
    concurrency: int
    accounts: int
    client_id: str
    pool_shards: int


class Deadline:
    """The one monotonic instant at which every phase stops."""

    def __init__(self, timeout_s: float) -> None:
        self.at = time.monotonic() + timeout_s

    def remaining_s(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def expired(self) -> bool:
        return self.remaining_s() <= 0.0


@dataclass
class Accounts:
    wallets: list[str]
    settlement: str | None
    errors: Counter[str]
    elapsed_s: float


@dataclass
class Sending:
    """What the submit phase saw: accepted keys in answer order, latencies, errors."""

    started: float = field(default_factory=time.perf_counter)
    finished: float | None = None
    cpu_started_s: float = field(default_factory=time.process_time)
    cpu_s: float = 0.0
    requests_sent: int = 0
    requests_answered: int = 0
    postings_sent: int = 0
    accepted_keys: list[str] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    def answered(self) -> None:
        self.requests_answered += 1
        self.finished = time.perf_counter()

    def close(self) -> None:
        """Note this process's CPU time; count requests cut off by the deadline as errors."""
        self.cpu_s = time.process_time() - self.cpu_started_s
        unanswered = self.requests_sent - self.requests_answered
        if unanswered:
            self.errors["no answer by deadline"] += unanswered


@dataclass
class Applying:
    """What the poll phase saw: final statuses, and when the last posting became final."""

    statuses: Counter[str] = field(default_factory=Counter)
    poll_errors: Counter[str] = field(default_factory=Counter)
    last_final: float | None = None
    sampled: int = 0


def skip_absent_sniffio() -> None:
    """Make httpcore's per-lock `import sniffio` fail at once when sniffio is not installed.

    httpcore imports sniffio on every lock it sets up; when the module is absent, each try
    searches sys.path again, which cost about a fifth of the client's CPU per request here.
    A None entry in sys.modules makes that import fail without the search.
    """
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]


class ClientPool:
    """`concurrency` HTTP/1.1 connections spread over `shards` httpx clients.

    httpcore's pool scans every connection for every queued request, so one client with 64
    connections spent about 2.5 ms of CPU per request and topped out near 400 requests/s on
    this machine, whatever the server did; eight clients of eight connections used 0.7 ms.
    """

    def __init__(self, workload: Workload, shards: int) -> None:
        shards = max(1, min(shards, workload.concurrency))
        sizes = [len(range(index, workload.concurrency, shards)) for index in range(shards)]
        self.clients = [open_client(workload, size) for size in sizes]

    def client_for(self, task: int) -> httpx.AsyncClient:
        """Task `task`'s client: tasks go round the clients, as their connections do."""
        return self.clients[task % len(self.clients)]

    async def __aenter__(self) -> ClientPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for client in self.clients:
            await client.aclose()


def open_client(workload: Workload, connections: int) -> httpx.AsyncClient:
    """An HTTP/1.1 client with `connections` pooled connections; proxies are ignored."""
    return httpx.AsyncClient(
        base_url=workload.url,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        timeout=httpx.Timeout(REQUEST_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
        headers={"X-Client-Id": workload.client_id},
        http1=True,
        http2=False,
        trust_env=False,
    )


Work = Callable[[httpx.AsyncClient], Coroutine[Any, Any, None]]


async def fan_out(workers: int, work: Work, *, pool: ClientPool, deadline: Deadline) -> bool:
    """Run `workers` copies of `work` until all return (True) or the deadline passes (False)."""
    try:
        async with asyncio.timeout(deadline.remaining_s()), asyncio.TaskGroup() as group:
            for task in range(workers):
                group.create_task(work(pool.client_for(task)))
    except TimeoutError:
        return False
    return True


async def check_service(client: httpx.AsyncClient) -> None:
    try:
        response = await client.get("/health")
    except httpx.HTTPError as error:
        raise BenchmarkError(f"no service at {client.base_url}: {error!r}") from error
    if response.status_code != httpx.codes.OK:
        raise BenchmarkError(f"{client.base_url}/health answered {response.status_code}")


def account_bodies(count: int) -> list[dict[str, str]]:
    """The settlement account first, then `count` wallets."""
    settlement = {"name": "bench settlement", "account_type": "liability", "currency": CURRENCY}
    wallets = [
        {"name": f"bench wallet {number}", "account_type": "asset", "currency": CURRENCY}
        for number in range(count)
    ]
    return [settlement, *wallets]


async def open_accounts(
    pool: ClientPool, count: int, *, concurrency: int, deadline: Deadline
) -> Accounts:
    bodies = account_bodies(count)
    opened: dict[int, str] = {}
    errors: Counter[str] = Counter()
    todo = iter(enumerate(bodies))
    started = time.perf_counter()

    async def work(client: httpx.AsyncClient) -> None:
        for index, body in todo:
            try:
                response = await client.post(f"{API_PREFIX}/accounts", json=body)
            except httpx.HTTPError as error:
                errors[type(error).__name__] += 1
                continue
            if response.status_code == httpx.codes.CREATED:
                opened[index] = response.json()["id"]
            else:
                errors[str(response.status_code)] += 1

    await fan_out(min(concurrency, len(bodies)), work, pool=pool, deadline=deadline)
    return Accounts(
        wallets=[opened[index] for index in sorted(opened) if index > 0],
        settlement=opened.get(0),
        errors=errors,
        elapsed_s=time.perf_counter() - started,
    )


def transfer(wallets: list[str], rng: random.Random) -> dict[str, Any]:
    """A new posting of AMOUNT from one random wallet to another, under a fresh key."""
    debit, credit = rng.sample(wallets, 2)
    return {
        "idempotency_key": uuid.uuid4().hex,
        "currency": CURRENCY,
        "entries": [
            {"account_id": debit, "direction": "debit", "amount": AMOUNT},
            {"account_id": credit, "direction": "credit", "amount": AMOUNT},
        ],
    }


async def send_single(
    pool: ClientPool, wallets: list[str], *, workload: Workload, deadline: Deadline
) -> Sending:
    """`postings` POST /transactions requests from `concurrency` tasks."""
    sending = Sending()
    rng = random.Random()
    todo = iter(range(workload.postings))

    async def work(client: httpx.AsyncClient) -> None:
        for _ in todo:
            body = transfer(wallets, rng)
            sending.requests_sent += 1
            sending.postings_sent += 1
            began = time.perf_counter()
            try:
                response = await client.post(f"{API_PREFIX}/transactions", json=body)
            except httpx.HTTPError as error:
                sending.answered()
                sending.errors[type(error).__name__] += 1
                continue
            sending.answered()
            if response.is_success:
                sending.latencies_s.append(time.perf_counter() - began)
                sending.accepted_keys.append(body["idempotency_key"])
            else:
                sending.errors[str(response.status_code)] += 1

    await fan_out(workload.concurrency, work, pool=pool, deadline=deadline)
    sending.close()
    return sending


def batch_sizes(postings: int) -> list[int]:
    full, rest = divmod(postings, BATCH_SIZE)
    return [BATCH_SIZE] * full + ([rest] if rest else [])


def note_batch(sending: Sending, response: httpx.Response, latency_s: float) -> None:
    """A batch answer: HTTP errors count per request, refused items per item."""
    if not response.is_success:
        sending.errors[str(response.status_code)] += 1
        return
    sending.latencies_s.append(latency_s)
    for item in response.json()["results"]:
        # A posting's status is a word; a problem object's status is its HTTP code.
        if isinstance(item.get("status"), str):
            sending.accepted_keys.append(item["idempotency_key"])
        else:
            sending.errors[f"item {item.get('status')} {item.get('code')}"] += 1


async def send_batches(
    pool: ClientPool, wallets: list[str], *, workload: Workload, deadline: Deadline
) -> Sending:
    """`postings` postings in POST /transactions/batch requests of BATCH_SIZE items."""
    sending = Sending()
    rng = random.Random()
    todo = iter(batch_sizes(workload.postings))

    async def work(client: httpx.AsyncClient) -> None:
        for size in todo:
            bodies = [transfer(wallets, rng) for _ in range(size)]
            sending.requests_sent += 1
            sending.postings_sent += size
            began = time.perf_counter()
            try:
                response = await client.post(
                    f"{API_PREFIX}/transactions/batch", json={"transactions": bodies}
                )
            except httpx.HTTPError as error:
                sending.answered()
                sending.errors[type(error).__name__] += 1
                continue
            sending.answered()
            note_batch(sending, response, time.perf_counter() - began)

    workers = min(BATCH_CONCURRENCY, workload.concurrency)
    await fan_out(workers, work, pool=pool, deadline=deadline)
    sending.close()
    return sending


async def poll_until_final(
    client: httpx.AsyncClient, key: str, applying: Applying, deadline: Deadline
) -> None:
    """Wait on one key's status URL until it is final, answers an error, or time is up."""
    errors = 0
    while errors < POLL_ERRORS_MAX:
        # At least one second, so a queued answer is never instant; the deadline cancels it.
        wait_s = max(1, min(POLL_WAIT_S, math.ceil(deadline.remaining_s())))
        try:
            response = await client.get(f"{API_PREFIX}/postings/{key}", params={"wait": wait_s})
        except httpx.HTTPError as error:
            applying.poll_errors[type(error).__name__] += 1
            errors += 1
            continue
        status = response.json().get("status") if response.is_success else None
        if status in FINAL_STATUSES:
            applying.statuses[status] += 1
            applying.last_final = time.perf_counter()
            return
        if status != "queued":
            applying.poll_errors[str(response.status_code)] += 1
            return


async def await_drained(client: httpx.AsyncClient, applying: Applying, deadline: Deadline) -> None:
    """Poll the partition view until nothing is queued; that moment is when all was applied.

    Postings of one partition apply in acceptance order, so the service's own count of
    queued postings is an exact completeness signal that costs one request per poll.
    """
    while not deadline.expired():
        try:
            response = await client.get(f"{API_PREFIX}/ops/partitions")
        except httpx.HTTPError as error:
            applying.poll_errors[type(error).__name__] += 1
            if applying.poll_errors.total() >= POLL_ERRORS_MAX:
                return
            continue
        if response.is_success and response.json()["queued"] == 0:
            applying.last_final = time.perf_counter()
            return
        await asyncio.sleep(DRAIN_POLL_S)


async def await_applied(
    pool: ClientPool, keys: list[str], *, concurrency: int, deadline: Deadline
) -> Applying:
    """Wait until nothing is queued, then read the status of a sample of the keys."""
    applying = Applying()
    await await_drained(pool.client_for(0), applying, deadline)
    drained_at = applying.last_final
    sample = iter(random.Random(0).sample(keys, min(len(keys), STATUS_SAMPLE)))

    async def work(client: httpx.AsyncClient) -> None:
        for key in sample:
            await poll_until_final(client, key, applying, deadline)

    await fan_out(min(concurrency, max(len(keys), 1)), work, pool=pool, deadline=deadline)
    applying.last_final = drained_at
    applying.sampled = min(len(keys), STATUS_SAMPLE)
    return applying


def percentile_ms(sorted_s: list[float], percent: float) -> float:
    """Nearest-rank percentile of sorted seconds, in milliseconds."""
    rank = max(1, math.ceil(percent / 100 * len(sorted_s)))
    return round(sorted_s[rank - 1] * 1000, 2)


def latency_summary(latencies_s: list[float]) -> dict[str, float | int | None]:
    ordered = sorted(latencies_s)
    if not ordered:
        return {"count": 0, "p50": None, "p95": None, "p99": None, "max": None}
    return {
        "count": len(ordered),
        "p50": percentile_ms(ordered, 50),
        "p95": percentile_ms(ordered, 95),
        "p99": percentile_ms(ordered, 99),
        "max": percentile_ms(ordered, 100),
    }


def rate(count: int, seconds: float | None) -> float | None:
    return round(count / seconds, 1) if seconds else None


def figures(accounts: Accounts, sending: Sending, applying: Applying) -> Figures:
    """The raw figures of one run of one mode."""
    send_s = None if sending.finished is None else sending.finished - sending.started
    applied_s = None if applying.last_final is None else applying.last_final - sending.started
    accepted = len(sending.accepted_keys)
    final = sum(applying.statuses.values())
    applied = accepted if applying.last_final is not None else 0
    return {
        "accounts_opened": len(accounts.wallets) + (accounts.settlement is not None),
        "accounts_s": round(accounts.elapsed_s, 3),
        "account_errors": dict(accounts.errors),
        "requests_sent": sending.requests_sent,
        "postings_sent": sending.postings_sent,
        "accepted": accepted,
        "errors": dict(sending.errors),
        "send_s": None if send_s is None else round(send_s, 3),
        # Near 1.0, the benchmark client itself, not the service, set the accept rate.
        "client_cpu_share_send": round(sending.cpu_s / send_s, 2) if send_s else None,
        "accepted_per_s": rate(accepted, send_s),
        "applied_s": None if applied_s is None else round(applied_s, 3),
        "applied_per_s": rate(applied, applied_s),
        "latency_ms": latency_summary(sending.latencies_s),
        "statuses": {status: applying.statuses[status] for status in FINAL_STATUSES},
        "statuses_sampled": applying.sampled,
        "unfinished": applying.sampled - final,
        "poll_errors": dict(applying.poll_errors),
    }


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def run_once(
    pool: ClientPool, mode: Mode, *, workload: Workload, deadline: Deadline
) -> Figures:
    """Open accounts, send, wait until applied; the figures of this run of `mode`."""
    accounts = await open_accounts(
        pool, workload.accounts, concurrency=workload.concurrency, deadline=deadline
    )
    progress(f"  {mode}: {len(accounts.wallets)} wallets opened in {accounts.elapsed_s:.1f} s")
    if len(accounts.wallets) < 2 and not deadline.expired():
        opened = len(accounts.wallets)
        raise BenchmarkError(f"only {opened} wallets opened: {dict(accounts.errors)}")
    sending, applying = Sending(), Applying()
    if not deadline.expired():
        send = send_single if mode == "single" else send_batches
        sending = await send(pool, accounts.wallets, workload=workload, deadline=deadline)
        progress(f"  {mode}: {len(sending.accepted_keys)}/{sending.postings_sent} accepted")
        applying = await await_applied(
            pool, sending.accepted_keys, concurrency=workload.concurrency, deadline=deadline
        )
    result = figures(accounts, sending, applying)
    result["mode"] = mode
    result["complete"] = not deadline.expired() and result["postings_sent"] == workload.postings
    progress(f"  {mode}: {sum(applying.statuses.values())} final, {result['unfinished']} not")
    return result


async def run_all(
    workload: Workload, *, modes: list[Mode], runs: int, deadline: Deadline
) -> list[Figures]:
    """Every run of every mode, interleaved, until done or the deadline passes."""
    skip_absent_sniffio()
    results: list[Figures] = []
    async with ClientPool(workload, workload.pool_shards) as pool:
        await check_service(pool.client_for(0))
        for run in range(1, runs + 1):
            for mode in modes:
                if deadline.expired():
                    return results
                progress(f"run {run}/{runs}, {mode}")
                result = await run_once(pool, mode, workload=workload, deadline=deadline)
                results.append({"run": run, **result})
    return results
