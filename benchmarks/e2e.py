"""HTTP plumbing of the end-to-end benchmark: loopback check, client pools, set-up, drain.

The benchmark starts no service and drives only a loopback address. Every phase stops at
one shared deadline and keeps what it has measured, so a stalled service still gives a
report. This module knows the service's URLs; what is sent, and how it is measured and
reported, lives in the modules beside it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

API_PREFIX = "/api/v1"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
CURRENCY = "USD"
AMOUNT = "1.00"
POLL_WAIT_S = 30
POLL_ERRORS_MAX = 3
DRAIN_POLL_S = 0.05
REQUEST_TIMEOUT_S = POLL_WAIT_S + 30.0
CONNECT_TIMEOUT_S = 10.0
FINAL_STATUSES = ("posted", "rejected", "failed")
JSON_HEADERS = {"Content-Type": "application/json"}

Figures = dict[str, Any]


class BenchmarkError(Exception):
    """Raised when the service cannot be benchmarked: unreachable, or it refuses the set-up."""


def loopback_url(url: str) -> str:
    """The URL without its trailing slash; ValueError unless http(s) on a loopback host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.hostname not in LOOPBACK_HOSTS:
        raise ValueError(f"{url!r}: only http(s) on 127.0.0.1, localhost or [::1] is driven")
    return url.rstrip("/")


class Deadline:
    """The one monotonic instant at which every phase stops."""

    def __init__(self, timeout_s: float) -> None:
        self.at = time.monotonic() + timeout_s

    def remaining_s(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def expired(self) -> bool:
        return self.remaining_s() <= 0.0


def skip_absent_sniffio() -> None:
    """Make httpcore's per-lock `import sniffio` fail at once when sniffio is not installed.

    httpcore imports sniffio on every lock it sets up; when the module is absent, each try
    searches sys.path again, which cost about a fifth of the client's CPU per request here.
    A None entry in sys.modules makes that import fail without the search.
    """
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]


class ClientPool:
    """`connections` HTTP/1.1 connections to `url` spread over `shards` httpx clients.

    httpcore's pool scans every connection for every queued request, so one client with 64
    connections spent about 2.5 ms of CPU per request and topped out near 400 requests/s on
    this machine, whatever the server did; eight clients of eight connections used 0.7 ms.
    """

    def __init__(self, url: str, *, client_id: str, connections: int, shards: int) -> None:
        shards = max(1, min(shards, connections))
        sizes = [len(range(index, connections, shards)) for index in range(shards)]
        self.url = url
        self.clients = [open_client(url, client_id, size) for size in sizes]

    def client_for(self, task: int) -> httpx.AsyncClient:
        """Task `task`'s client: tasks go round the clients, as their connections do."""
        return self.clients[task % len(self.clients)]

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()


def key_headers() -> dict[str, str]:
    """The API key the benchmark sends: LEDGERFLOW_API_KEY, as `ledgerflow dev` prints it
    and `ledgerflow keys create` makes it (with postings:write, postings:read,
    ledger:read, accounts:write and ops). None when unset: for a service run with
    LEDGERFLOW_AUTH=off, or the HTTP ceiling."""
    secret = os.environ.get("LEDGERFLOW_API_KEY")
    return {"Authorization": f"Bearer {secret}"} if secret else {}


def open_client(url: str, client_id: str, connections: int) -> httpx.AsyncClient:
    """An HTTP/1.1 client with `connections` pooled connections; proxies are ignored."""
    return httpx.AsyncClient(
        base_url=url,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        timeout=httpx.Timeout(REQUEST_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
        headers={"X-Client-Id": client_id, **key_headers()},
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


@dataclass
class Accounts:
    """One run's accounts on one service: asset wallets and the liability settlement."""

    wallets: list[str]
    settlement: str
    errors: Counter[str]
    elapsed_s: float


def account_bodies(count: int) -> list[dict[str, str]]:
    """The settlement account first, then `count` wallets; plain accounts, no flags."""
    settlement = {"name": "bench settlement", "account_type": "liability", "currency": CURRENCY}
    wallets = [
        {"name": f"bench wallet {number}", "account_type": "asset", "currency": CURRENCY}
        for number in range(count)
    ]
    return [settlement, *wallets]


async def open_accounts(
    pool: ClientPool,
    count: int,
    *,
    concurrency: int,
    deadline: Deadline,
    on_opened: Callable[[], None],
) -> Accounts | None:
    """Open the settlement account and `count` wallets, `concurrency` at a time.

    None when the deadline cut it short; BenchmarkError when the service refused too many.
    """
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
                on_opened()
            else:
                errors[str(response.status_code)] += 1

    await fan_out(min(concurrency, len(bodies)), work, pool=pool, deadline=deadline)
    if deadline.expired():
        return None
    wallets = [opened[index] for index in sorted(opened) if index > 0]
    if 0 not in opened or len(wallets) < 2:
        raise BenchmarkError(
            f"{pool.url} opened {len(wallets)} wallets and "
            f"{'a' if 0 in opened else 'no'} settlement account: {dict(errors)}"
        )
    return Accounts(wallets, opened[0], errors, time.perf_counter() - started)


async def shares_accounts(client: httpx.AsyncClient, accounts: Accounts) -> bool:
    """Whether the service behind `client` knows these accounts (the same database)."""
    try:
        response = await client.get(f"{API_PREFIX}/accounts/{accounts.settlement}")
    except httpx.HTTPError:
        return False
    return response.status_code == httpx.codes.OK


async def await_drained(
    client: httpx.AsyncClient,
    *,
    deadline: Deadline,
    poll_errors: Counter[str],
    on_queued: Callable[[int], None],
) -> float | None:
    """Poll the partition view until nothing is queued; the perf_counter of that moment.

    Postings of one partition apply in acceptance order, so the service's own count of
    queued postings is an exact completeness signal that costs one request per poll.
    None when the deadline passed or the view kept failing.
    """
    while not deadline.expired():
        try:
            response = await client.get(f"{API_PREFIX}/ops/partitions")
        except httpx.HTTPError as error:
            poll_errors[type(error).__name__] += 1
            if poll_errors.total() >= POLL_ERRORS_MAX:
                return None
            continue
        if not response.is_success:
            poll_errors[f"partitions {response.status_code}"] += 1
            if poll_errors.total() >= POLL_ERRORS_MAX:
                return None
        else:
            queued = int(response.json()["queued"])
            on_queued(queued)
            if queued == 0:
                return time.perf_counter()
        await asyncio.sleep(DRAIN_POLL_S)
    return None
