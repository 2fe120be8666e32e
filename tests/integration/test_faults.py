"""Faults with real processes: workers SIGKILLed mid-drain, Redis restarted empty.

Each test runs its own redis-server, API process and worker processes against the test
database, and ends with `ledgerflow verify` passing: every accepted posting applied
exactly once, balances equal to their entries, money conserved.
"""

from __future__ import annotations

import random
import signal
import subprocess
import threading
import time

import httpx
import pytest
from sqlalchemy import text

from runtime.context import Runtime
from tests.integration.conftest import AUTHORIZED, transfer
from tests.integration.load import (
    assert_applied_once,
    open_accounts,
    queued,
    wait_until_drained,
)
from tests.integration.processes import Processes

# Real processes killed and restarted: left out of `make test-fast`.
pytestmark = pytest.mark.slow


def _submit(
    api: str, accounts: list[str], count: int, prefix: str, *, batch: int = 1000, pause_s: float = 0
) -> None:
    rng = random.Random(prefix)
    bodies = []
    for i in range(count):
        debit, credit = rng.sample(accounts, 2)
        bodies.append(
            transfer(
                debit, credit, f"{rng.randint(1, 999)}.{rng.randint(0, 99):02}", f"{prefix}-{i}"
            )
        )
    with httpx.Client(base_url=api, timeout=60, headers=AUTHORIZED) as client:
        for start in range(0, count, batch):
            response = client.post(
                "/api/v1/transactions/batch", json={"transactions": bodies[start : start + batch]}
            )
            assert response.status_code == 200
            assert {r["status"] for r in response.json()["results"]} <= {"queued", "posted"}
            time.sleep(pause_s)


def test_workers_killed_repeatedly_while_draining_apply_each_posting_once(
    runtime: Runtime, processes: Processes
) -> None:
    processes.env["LEDGERFLOW_APPLY_BATCH_MAX"] = "25"
    api = processes.start_api()
    accounts = open_accounts(api, 40)
    submitter = threading.Thread(
        target=_submit, args=(api, accounts, 3000, "KILL"), kwargs={"batch": 100, "pause_s": 0.1}
    )
    submitter.start()
    rng = random.Random(7)
    alive: list[subprocess.Popen[bytes]] = []
    kills_with_work_pending = 0
    for _ in range(10):
        alive.append(processes.start_worker())
        time.sleep(rng.uniform(0.5, 2.0))
        victim = alive.pop(rng.randrange(len(alive)))
        kills_with_work_pending += bool(queued(runtime))
        processes.kill(victim)
    submitter.join(timeout=120)
    assert kills_with_work_pending >= 3, "too few workers were killed while work was pending"
    processes.start_worker()
    wait_until_drained(runtime, timeout_s=90)
    assert_applied_once(runtime, processes, 3000)


def test_redis_restarted_empty_with_postings_queued_loses_nothing(
    runtime: Runtime, processes: Processes
) -> None:
    api = processes.start_api()
    accounts = open_accounts(api, 20)
    _submit(api, accounts, 1000, "WIPE")
    processes.kill_redis()
    with httpx.Client(base_url=api, timeout=30, headers=AUTHORIZED) as client:
        # Redis is down: acceptance is still durable in PostgreSQL.
        response = client.post(
            "/api/v1/transactions", json=transfer(accounts[0], accounts[1], "1.00", "WIPE-DOWN")
        )
        assert response.status_code == 202
    processes.start_redis()
    assert queued(runtime) == 1001
    processes.start_worker()
    processes.start_worker()
    wait_until_drained(runtime, timeout_s=60)
    assert_applied_once(runtime, processes, 1001)


def test_sigterm_finishes_the_batch_in_hand_releases_leases_and_exits_0(
    runtime: Runtime, processes: Processes
) -> None:
    processes.env["LEDGERFLOW_APPLY_BATCH_MAX"] = "50"
    api = processes.start_api()
    accounts = open_accounts(api, 10)
    _submit(api, accounts, 2000, "TERM")
    worker = processes.start_worker()
    deadline = time.monotonic() + 30
    while queued(runtime) == 2000:
        assert time.monotonic() < deadline, "the worker never started applying"
        time.sleep(0.05)
    asked = time.monotonic()
    processes.kill(worker, signal.SIGTERM)
    assert worker.returncode == 0
    assert time.monotonic() - asked < 5, "the worker did not stop after the batch in hand"
    with runtime.database.engine.connect() as connection:
        owners = connection.execute(
            text("SELECT count(*) FROM partition_leases WHERE owner IS NOT NULL")
        ).scalar_one()
        registered = connection.execute(text("SELECT count(*) FROM workers")).scalar_one()
    assert (owners, registered) == (0, 0), "leases were not released"
    assert queued(runtime) > 0, "the worker drained everything before it was asked to stop"
    processes.start_worker()
    wait_until_drained(runtime, timeout_s=60)
    assert_applied_once(runtime, processes, 2000)
