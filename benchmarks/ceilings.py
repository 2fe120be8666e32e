"""The two reference phases each run measures beside the service: its ceilings.

- HTTP ceiling: `benchmarks.ceiling_app` (FastAPI and uvicorn validating the posting body,
  storing nothing), loaded exactly like the service's single mode: the same requests
  from the same number of tasks over the same connections, never paced. The benchmark
  starts it on a free loopback port and ends it by pid, unless given its URL.
- PostgreSQL ceiling: the ledger's writes in set-based batches of 1,000 from this process
  (`benchmarks.postgres_ceiling`), for each scenario's choice of accounts.

Both report their rate and the CPU per posting of every process group, like any phase.
"""

from __future__ import annotations

import asyncio
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from typing import IO

import httpx
import psycopg

from benchmarks.cpu import Census, Snapshot, cpu_figures
from benchmarks.e2e import (
    API_PREFIX,
    Accounts,
    BenchmarkError,
    ClientPool,
    Deadline,
    Figures,
    open_client,
)
from benchmarks.postgres_ceiling import (
    connect,
    intake_rows,
    open_scratch_accounts,
    write_batch,
)
from benchmarks.progress import Bar
from benchmarks.scenarios import Scenario, picker, prepare
from benchmarks.sending import Pacer, Sampler, Shape, send
from benchmarks.stats import latency_summary, rate, rounded

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
POLL_S = 0.1
CEILING_BATCH_SIZE = 1000


@dataclass
class HttpCeiling:
    """The HTTP ceiling's URL, and its process when this benchmark started it."""

    url: str
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None

    def stop(self) -> None:
        """End the process this benchmark started, by its pid, within STOP_TIMEOUT_S."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT_S)
        if self.log is not None:
            self.log.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def start_http_ceiling(port: int | None) -> HttpCeiling:
    """Serve `benchmarks.ceiling_app` on 127.0.0.1:`port` (a free one if None) and wait
    until it answers /health; BenchmarkError if it does not within START_TIMEOUT_S."""
    port = port or free_port()
    # The log lives as long as the process; HttpCeiling.stop closes it.
    log = tempfile.TemporaryFile()  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.ceiling_app", "--port", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    ceiling = HttpCeiling(f"http://127.0.0.1:{port}", process, log)
    give_up_at = time.monotonic() + START_TIMEOUT_S
    async with open_client(ceiling.url, "ceiling", 1) as client:
        while process.poll() is None and time.monotonic() < give_up_at:
            try:
                if (await client.get("/health")).status_code == httpx.codes.OK:
                    return ceiling
            except httpx.TransportError:
                pass
            await asyncio.sleep(POLL_S)
    ceiling.stop()
    log.seek(0)
    output = log.read().decode(errors="replace")[-2000:]
    raise BenchmarkError(f"the HTTP ceiling did not start on port {port}: {output}")


def ceiling_record(run: int, ceiling: str, scenario: Scenario | None, **figures: object) -> Figures:
    return {"run": run, "ceiling": ceiling, "scenario": scenario, **figures}


async def http_ceiling_phase(
    run: int,
    *,
    pool: ClientPool,
    accounts: Accounts,
    postings: int,
    concurrency: int,
    census: Census,
    deadline: Deadline,
) -> Figures:
    """Single-mode requests to the HTTP ceiling, unpaced; its requests/s and CPU."""
    rng = random.Random(f"{run}/http-ceiling")
    requests = prepare(picker("uniform", accounts, rng), postings, per_request=1)
    shape = Shape(f"{API_PREFIX}/transactions", concurrency, paced=True, batch=False)
    sampler = Sampler(pool, postings=postings, deadline=deadline, follow=False)
    start = Snapshot.take(census)
    with Bar(f"run {run} HTTP ceiling", "sent", postings) as bar:
        sending = await send(
            requests,
            shape,
            pool=pool,
            pacer=Pacer(None),
            sampler=sampler,
            deadline=deadline,
            bar=bar,
        )
    end = Snapshot.take(census)
    send_s = None if sending.finished is None else sending.finished - sending.started
    return ceiling_record(
        run,
        "http",
        None,
        postings=sending.accepted,
        seconds=rounded(send_s),
        per_s=rate(sending.accepted, send_s),
        errors=dict(sending.errors),
        request_latency_ms=latency_summary(sending.latencies_s),
        complete=not deadline.expired() and sending.accepted == postings,
        cpu=cpu_figures(start, end, postings=sending.accepted),
    )


def postgres_ceiling_phase(
    run: int,
    scenario: Scenario,
    *,
    database_url: str,
    accounts: int,
    postings: int,
    census: Census,
    deadline: Deadline,
) -> Figures:
    """The ledger's writes for `postings` postings of `scenario`, in batches of 1,000.

    A database error ends the phase: it is counted, and what was written is reported."""
    errors: Counter[str] = Counter()
    written, elapsed_s = 0, 0.0
    start = end = Snapshot.take(census)
    try:
        with connect(database_url) as connection:
            scratch = open_scratch_accounts(connection, accounts)
            pick = picker(scenario, scratch, random.Random(f"{run}/{scenario}/postgresql"))
            todo = intake_rows(connection, [pick() for _ in range(postings)])
            start = Snapshot.take(census)
            started = time.perf_counter()
            with Bar(f"run {run} {scenario} PostgreSQL ceiling", "written", postings) as bar:
                for first in range(0, len(todo), CEILING_BATCH_SIZE):
                    if deadline.expired():
                        break
                    batch = todo[first : first + CEILING_BATCH_SIZE]
                    write_batch(connection, batch)
                    written += len(batch)
                    bar.add(len(batch))
            elapsed_s = time.perf_counter() - started
            end = Snapshot.take(census)
    except psycopg.Error as error:
        errors[getattr(error, "sqlstate", None) or type(error).__name__] += 1
    return ceiling_record(
        run,
        "postgresql",
        scenario,
        postings=written,
        seconds=rounded(elapsed_s),
        per_s=rate(written, elapsed_s),
        errors=dict(errors),
        complete=written == postings,
        cpu=cpu_figures(start, end, postings=written),
    )
