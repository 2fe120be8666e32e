"""Partition ownership with real worker processes under load: rebalancing when workers
join, takeover when they die, fencing when one is paused past its lease.

Each test runs its own redis-server, API and workers (lease time 2 s) against the test
database, and ends with every accepted posting applied exactly once (`ledgerflow verify`).
"""

from __future__ import annotations

import math
import signal
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from redis import Redis
from sqlalchemy import text

from runtime.context import Runtime
from runtime.telemetry import read_counters
from tests.integration.load import (
    SteadyLoad,
    assert_applied_once,
    assert_apply_order_is_acceptance_order,
    open_accounts,
    owners,
    wait_until_drained,
)
from tests.integration.processes import Processes

# Real worker processes under load: left out of `make test-fast`.
pytestmark = pytest.mark.slow

LEASE_TTL_S = 2.0


def _owner_pid(owner: str | None) -> int | None:
    """Worker names are host.pid.suffix."""
    return None if owner is None else int(owner.split(".")[-2])


def _shares(runtime: Runtime) -> Counter[int | None]:
    return Counter(_owner_pid(owner) for owner in owners(runtime, LEASE_TTL_S).values())


@pytest.fixture
def sixteen(processes: Processes) -> Processes:
    processes.env["LEDGERFLOW_PARTITIONS"] = "16"
    return processes


def test_workers_joining_under_load_share_the_partitions_within_15_s(
    runtime: Runtime, sixteen: Processes
) -> None:
    api = sixteen.start_api()
    accounts = open_accounts(api, 60)
    load = SteadyLoad(api, accounts, prefix="JOIN", batch=20, interval_s=0.05)
    with load.running():
        first = sixteen.start_worker()
        deadline = time.monotonic() + 15
        while _shares(runtime)[first.pid] < 16:
            assert time.monotonic() < deadline, f"one worker did not take all: {_shares(runtime)}"
            time.sleep(0.2)
        joined = [sixteen.start_worker() for _ in range(3)]
        started = time.monotonic()
        pids = {first.pid, *(w.pid for w in joined)}
        low, high = math.floor(16 / 4), math.ceil(16 / 4)
        while True:
            shares = _shares(runtime)
            if set(shares) == pids and all(low <= shares[pid] <= high for pid in pids):
                print(f"balanced {dict(shares)} {time.monotonic() - started:.1f} s after joining")
                break
            assert time.monotonic() - started < 15, f"not balanced after 15 s: {shares}"
            time.sleep(0.2)
        time.sleep(1)  # keep the load on across the handovers
    assert load.sent >= 1000
    wait_until_drained(runtime, timeout_s=60)
    assert_applied_once(runtime, sixteen, load.sent)
    assert_apply_order_is_acceptance_order(runtime)


def test_two_of_four_workers_killed_under_load_are_replaced_within_lease_time(
    runtime: Runtime, sixteen: Processes
) -> None:
    api = sixteen.start_api()
    accounts = open_accounts(api, 60)
    load = SteadyLoad(api, accounts, prefix="KILL2", batch=20, interval_s=0.05)
    with load.running():
        workers = [sixteen.start_worker() for _ in range(4)]
        pids = {w.pid for w in workers}
        deadline = time.monotonic() + 20
        while set(_shares(runtime)) != pids:
            assert time.monotonic() < deadline, f"four workers never all owned: {_shares(runtime)}"
            time.sleep(0.2)
        victims, survivors = workers[:2], {w.pid for w in workers[2:]}
        for victim in victims:
            sixteen.kill(victim)
        killed = time.monotonic()
        while not set(_shares(runtime)) <= survivors:
            assert time.monotonic() - killed < LEASE_TTL_S + 5, (
                f"not owned again within lease time + 5 s: {_shares(runtime)}"
            )
            time.sleep(0.1)
        print(f"owned again {time.monotonic() - killed:.1f} s after the kill")
        assert sum(_shares(runtime).values()) == 16
        time.sleep(1)
    wait_until_drained(runtime, timeout_s=60)
    assert_applied_once(runtime, sixteen, load.sent)
    assert_apply_order_is_acceptance_order(runtime)


@pytest.fixture
def slow_batches(runtime: Runtime) -> Iterator[None]:
    """Every batch insert sleeps 0.4 s inside its transaction, so a worker is nearly always
    in the middle of one."""
    with runtime.database.engine.begin() as connection:
        connection.execute(
            text(
                "CREATE FUNCTION test_slow_batch() RETURNS trigger LANGUAGE plpgsql AS"
                " $$ BEGIN PERFORM pg_sleep(0.4); RETURN NULL; END $$"
            )
        )
        connection.execute(
            text(
                "CREATE TRIGGER test_slow_batch BEFORE INSERT ON transactions"
                " FOR EACH STATEMENT EXECUTE FUNCTION test_slow_batch()"
            )
        )
    try:
        yield
    finally:
        with runtime.database.engine.begin() as connection:
            connection.execute(text("DROP TRIGGER test_slow_batch ON transactions"))
            connection.execute(text("DROP FUNCTION test_slow_batch()"))


def _in_transaction(runtime: Runtime, pid: int) -> bool:
    with runtime.database.engine.connect() as connection:
        return bool(
            connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"
                    " AND xact_start IS NOT NULL AND query LIKE '%INSERT INTO transactions%'"
                ),
                {"name": f"ledgerflow/{pid}"},
            ).scalar_one()
        )


def test_a_worker_paused_past_its_lease_cannot_commit_its_batch(
    runtime: Runtime, processes: Processes, slow_batches: None
) -> None:
    api = processes.start_api()
    accounts = open_accounts(api, 20)
    load = SteadyLoad(api, accounts, prefix="PAUSE", batch=10, interval_s=0.05)
    with load.running():
        paused = processes.start_worker()
        deadline = time.monotonic() + 20
        while not _in_transaction(runtime, paused.pid):
            assert time.monotonic() < deadline, "the worker never started a batch"
            time.sleep(0.01)
        paused.send_signal(signal.SIGSTOP)
        try:
            stopped = time.monotonic()
            taker = processes.start_worker()
            while set(_shares(runtime)) != {taker.pid}:
                assert time.monotonic() - stopped < 20, f"no takeover: {_shares(runtime)}"
                time.sleep(0.1)
        finally:
            paused.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + 20
        fenced = 0
        while not fenced:
            fenced = read_counters(Redis.from_url(processes.redis_url)).batches_fenced
            assert time.monotonic() < deadline, "the resumed worker was never fenced off"
            time.sleep(0.2)
        assert paused.poll() is None, "the resumed worker died instead of standing down"
    wait_until_drained(runtime, timeout_s=60)
    assert_applied_once(runtime, processes, load.sent)
    assert_apply_order_is_acceptance_order(runtime)
