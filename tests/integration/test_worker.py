"""The worker side: exactly-once application, order, the reconciler, poison postings, verify."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from redis import Redis
from rq.job import Callback, JobStatus
from sqlalchemy import text

import worker.jobs
from runtime.context import Runtime
from runtime.queues import JOB_FUNCTION, enqueue_batches, partition_queue, queue_depths
from runtime.wakeups import outcomes_channel
from tests.integration.conftest import count_rows, drain, open_account, transfer
from worker.context import WorkerContext
from worker.main import PartitionWorker, rq_worker_for
from worker.reconciler import reconcile


def _accept(client: httpx.Client, bodies: list[dict[str, object]]) -> None:
    for body in bodies:
        assert client.post("/api/v1/transactions", json=body).status_code == 202


def test_a_job_delivered_twice_applies_once(client: httpx.Client, runtime: Runtime) -> None:
    wallet, merchant = open_account(client), open_account(client, account_type="liability")
    _accept(client, [transfer(wallet, merchant, "2.00", "TWICE")])
    with runtime.database.engine.connect() as connection:
        request_id, partition = connection.execute(
            text("SELECT id, partition FROM posting_requests")
        ).one()
    enqueue_batches(runtime.redis, {partition: [request_id]}, force=True)
    enqueue_batches(runtime.redis, {partition: [request_id]}, force=True)
    assert runtime.redis.llen(partition_queue(runtime.redis, partition).key) == 3
    assert drain(runtime)
    assert count_rows(runtime, "transactions") == 1
    assert client.get(f"/api/v1/accounts/{wallet}/balance").json()["balance"] == "2.00"


def test_a_batch_wakeup_names_each_transaction_as_stored(
    client: httpx.Client, runtime: Runtime
) -> None:
    """The wake-up carries each posted request's transaction id and posting time (what
    the API answers waiters with) and each refusal's code, exactly as PostgreSQL holds them."""
    wallet, merchant = open_account(client), open_account(client, account_type="liability")
    euros = open_account(client, currency="EUR")
    _accept(
        client,
        [
            transfer(wallet, merchant, "1.00", "WK-1"),
            transfer(wallet, euros, "1.00", "WK-2"),
            transfer(wallet, merchant, "2.00", "WK-3"),
        ],
    )
    with runtime.database.engine.connect() as connection:
        [partition] = connection.execute(
            text("SELECT DISTINCT partition FROM posting_requests")
        ).scalars()
    batch = runtime.ledger.apply_next_batch(partition, 10)
    with runtime.database.engine.connect() as connection:
        stored = {
            row.request_id: [row.request_id, "posted", str(row.id), row.posted_at.isoformat()]
            for row in connection.execute(
                text("SELECT request_id, id, posted_at FROM transactions")
            )
        }
        [refused_id] = connection.execute(
            text("SELECT id FROM posting_requests WHERE status = 'rejected'")
        ).scalars()
    items = [wakeup.item() for wakeup in worker.jobs.wakeups(batch)]
    assert len(stored) == 2
    assert [item for item in items if item[1] == "posted"] == sorted(stored.values())
    [refused] = [item for item in items if item[1] == "rejected"]
    assert refused[:3] == [refused_id, "rejected", "currency_mismatch"]


def test_a_deep_partition_is_drained_by_continuation_jobs(
    client: httpx.Client, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    wallet, merchant = open_account(client), open_account(client, account_type="liability")
    _accept(client, [transfer(wallet, merchant, "1.00", f"DEEP-{i}") for i in range(30)])
    small = dataclasses.replace(
        runtime, settings=runtime.settings.model_copy(update={"apply_batch_max": 4})
    )
    monkeypatch.setattr(worker.jobs, "BATCHES_PER_JOB_MAX", 2)
    applied: list[int] = []
    real = worker.jobs.drain_partitions

    def counting(context: WorkerContext, partitions: tuple[int, ...]) -> tuple[int, bool]:
        result = real(context, partitions)
        applied.append(result[0])
        return result

    monkeypatch.setattr(worker.jobs, "drain_partitions", counting)
    drain(small)
    assert sum(applied) == 30
    assert len([n for n in applied if n]) >= 4  # no job applied more than two batches of 4
    assert max(applied) <= 8
    assert count_rows(runtime, "transactions") == 30


def test_postings_of_one_routing_account_apply_in_acceptance_order(
    client: httpx.Client, runtime: Runtime
) -> None:
    wallet, merchant = open_account(client), open_account(client, account_type="liability")
    keys = [f"ORDER-{i:03}" for i in range(40)]
    _accept(client, [transfer(wallet, merchant, "1.00", key) for key in keys])
    drain(runtime)
    applied = client.get("/api/v1/transactions", params={"account_id": wallet, "limit": 100})
    assert [t["idempotency_key"] for t in applied.json()["items"]] == keys


def test_reconciler_enqueues_what_redis_lost(client: httpx.Client, runtime: Runtime) -> None:
    wallet, merchant = open_account(client), open_account(client, account_type="liability")
    _accept(client, [transfer(wallet, merchant, "1.00", f"LOST-{i}") for i in range(25)])
    runtime.redis.flushdb()
    assert not drain(runtime)
    patient = dataclasses.replace(
        runtime, settings=runtime.settings.model_copy(update={"stale_after_s": 3600.0})
    )
    assert reconcile(patient, range(runtime.settings.partitions)) == {}  # not stale yet
    time.sleep(runtime.settings.stale_after_s + 0.2)
    swept = reconcile(runtime, range(runtime.settings.partitions))
    assert swept
    assert reconcile(runtime, range(runtime.settings.partitions)) == {}  # carried now
    drain(runtime)
    assert count_rows(runtime, "transactions") == 25
    assert client.get(f"/api/v1/accounts/{wallet}/balance").json()["balance"] == "25.00"


def test_a_poison_posting_fails_alone_and_its_partition_moves_on(
    client: httpx.Client, runtime: Runtime
) -> None:
    wallet, merchant = open_account(client), open_account(client, account_type="liability")
    _accept(client, [transfer(wallet, merchant, "1.00", f"P-{i}") for i in range(9)])
    with runtime.database.engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE posting_requests SET document = '{\"broken\": true}' "
                "WHERE idempotency_key = 'P-4'"
            )
        )
    drain(runtime)
    statuses = {f"P-{i}": client.get(f"/api/v1/postings/P-{i}").json() for i in range(9)}
    assert statuses["P-4"]["status"] == "failed"
    assert statuses["P-4"]["error"]["code"] == "apply_failed"
    assert [s["status"] for k, s in statuses.items() if k != "P-4"] == ["posted"] * 8
    assert client.get(f"/api/v1/accounts/{wallet}/balance").json()["balance"] == "8.00"


def _verify(runtime: Runtime, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {
        "LEDGERFLOW_DATABASE_URL": str(runtime.settings.database_url),
        "LEDGERFLOW_REDIS_URL": str(runtime.settings.redis_url),
        "LEDGERFLOW_PARTITIONS": str(runtime.settings.partitions),
    }
    return subprocess.run(
        [sys.executable, "-m", "ledgerflow", "verify", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow  # `ledgerflow verify` in a process of its own
def test_verify_passes_on_a_sound_ledger_and_fails_on_a_corrupted_balance(
    client: httpx.Client, runtime: Runtime
) -> None:
    wallet, merchant = open_account(client), open_account(client, account_type="liability")
    _accept(client, [transfer(wallet, merchant, "3.00", f"V-{i}") for i in range(5)])
    drain(runtime)
    sound = _verify(runtime)
    assert sound.returncode == 0, sound.stdout + sound.stderr
    assert "ledger holds every invariant" in sound.stdout

    with runtime.database.engine.begin() as connection:
        connection.execute(
            text("UPDATE accounts SET debits_posted = debits_posted + 1 WHERE id = :id"),
            {"id": wallet},
        )
    broken = _verify(runtime)
    assert broken.returncode == 1
    assert (
        f"account {wallet}: stored debits/credits 1501/0 but entries sum to 1500/0" in broken.stdout
    )


@pytest.mark.slow  # `ledgerflow verify` in a process of its own
def test_verify_reports_accepted_requests_that_no_job_carries(
    client: httpx.Client, runtime: Runtime
) -> None:
    wallet, merchant = open_account(client), open_account(client, account_type="liability")
    _accept(client, [transfer(wallet, merchant, "1.00", "ORPHAN")])
    assert _verify(runtime, "--grace-s", "0").returncode == 0
    runtime.redis.flushdb()
    orphaned = _verify(runtime, "--grace-s", "0")
    assert orphaned.returncode == 1
    assert "queued requests up to id" in orphaned.stdout


def test_a_pinned_worker_takes_its_partitions_from_whoever_holds_them(
    runtime: Runtime,
) -> None:
    everything = list(range(runtime.settings.partitions))
    other = PartitionWorker(runtime, name="other")
    pinned = PartitionWorker(runtime, pinned=[1, 2], name="pinned")
    other.ownership.ensure_partitions()
    other.ownership.register(other.report([]))
    try:
        assert other.rebalance() == everything
        pinned.ownership.register(pinned.report([]))
        assert pinned.rebalance() == []  # held by a live worker: not taken from under it
        assert other.rebalance() == [p for p in everything if p not in (1, 2)]
        assert pinned.rebalance() == [1, 2]
        owners = {lease.partition: lease.owner for lease in other.ownership.leases()}
        assert owners == {p: "pinned" if p in (1, 2) else "other" for p in everything}
    finally:
        pinned.leases.release_all()
        other.leases.release_all()
    assert all(lease.owner is None for lease in other.ownership.leases())


def test_a_worker_runs_only_its_own_job_functions(
    runtime: Runtime, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Whoever can write to Redis cannot choose what a worker executes: a job naming any
    other function fails without that function being imported or run, and the callbacks
    a job may name (on success, failure or stop) are never run, on a foreign job or on a
    real `apply_partition` job. (`print` as the callback: RQ would call it with the job,
    so running it would show the job's id on stdout.)"""
    queue = partition_queue(runtime.redis, 0)
    target = tmp_path / "made-by-a-foreign-job"
    foreign = queue.enqueue(
        "os.mkdir", str(target), on_failure=Callback("builtins.print"), on_stopped="builtins.print"
    )
    own = queue.enqueue(JOB_FUNCTION, 0, [], on_success=Callback("builtins.print"))
    capsys.readouterr()
    drain(runtime)
    assert not target.exists()
    assert foreign.get_status(refresh=True) == JobStatus.FAILED
    printed = capsys.readouterr().out
    assert foreign.id not in printed
    assert own.id not in printed


def test_wake_ups_of_another_redis_database_are_not_heard(
    client: httpx.Client, runtime: Runtime
) -> None:
    """Redis has one pub/sub namespace for all its databases. A deployment on another
    database publishing wake-ups for the same request ids (they start at 1 in every fresh
    database) must not answer our waiting POST with its transaction."""
    wallet, merchant = open_account(client), open_account(client, account_type="liability")
    db = runtime.redis.connection_pool.connection_kwargs["db"]
    where = runtime.redis.connection_pool.connection_kwargs
    neighbour = Redis(host=where["host"], port=where["port"], db=(db + 1) % 16)
    assert outcomes_channel(neighbour) != outcomes_channel(runtime.redis)
    fake = json.dumps(
        {
            "outcomes": [
                [i, "posted", "00000000-0000-4000-8000-000000000000", "2000-01-01T00:00:00+00:00"]
                for i in range(1, 6)
            ]
        }
    )
    answers: list[httpx.Response] = []
    body = transfer(wallet, merchant, "3.00", "NEIGHBOUR-1")
    waited = threading.Thread(
        target=lambda: answers.append(client.post("/api/v1/transactions?wait=2", json=body))
    )
    waited.start()
    deadline = time.monotonic() + 10
    while waited.is_alive() and time.monotonic() < deadline:
        neighbour.publish(outcomes_channel(neighbour), fake)
        time.sleep(0.02)
    waited.join(timeout=10)
    assert answers[0].status_code == 202, answers[0].text
    assert answers[0].json()["status"] == "queued"


def test_one_job_drains_every_partition_its_worker_owns(
    client: httpx.Client, runtime: Runtime
) -> None:
    """A job rings for the worker: it takes the other partitions' waiting jobs and applies
    all of them, oldest first, in shared batches."""
    payers = [open_account(client) for _ in range(12)]
    payee = open_account(client, account_type="liability")
    bodies = [transfer(payer, payee, "1.00", f"MULTI-{i}") for i, payer in enumerate(payers)]
    _accept(client, bodies)
    depths = queue_depths(runtime.redis, runtime.settings.partitions)
    assert sum(depths.values()) > 1, depths  # the payers route to several partitions
    context = WorkerContext.build(runtime)
    one_job = rq_worker_for(context, range(runtime.settings.partitions), name="one-job")
    one_job.work(burst=True, max_jobs=1, logging_level="WARNING")
    assert count_rows(runtime, "transactions") == len(bodies)
    assert sum(queue_depths(runtime.redis, runtime.settings.partitions).values()) == 0
    with runtime.database.engine.connect() as connection:
        order = (
            connection.execute(
                text(
                    "SELECT r.id FROM transactions t JOIN posting_requests r ON r.id = t.request_id"
                    " ORDER BY t.position"
                )
            )
            .scalars()
            .all()
        )
    assert order == sorted(order)  # applied in acceptance order across partitions
