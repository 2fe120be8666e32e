"""What operators see and do: poison postings and their replay, backpressure, metrics,
`ledgerflow ops status`."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from ledger_core.model import AccountId
from ledger_core.rules import partition_of
from runtime.context import Runtime, build_runtime
from tests.integration.conftest import (
    AUTHORIZED,
    drain,
    ledgerflow_cli,
    open_account,
    runtime_env,
    serve,
    transfer,
)
from tests.integration.load import open_accounts, wait_until_drained
from tests.integration.processes import Processes


@pytest.fixture
def poison_reference(runtime: Runtime) -> Iterator[None]:
    """A cause outside the posting itself: the database refuses any transaction with
    reference POISON until the trigger is dropped (the cause is fixed)."""
    with runtime.database.engine.begin() as connection:
        connection.execute(
            text(
                "CREATE FUNCTION test_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                " IF NEW.reference = 'POISON' THEN"
                " RAISE EXCEPTION 'settlement bank refused the reference'; END IF;"
                " RETURN NEW; END $$"
            )
        )
        connection.execute(
            text(
                "CREATE TRIGGER test_poison BEFORE INSERT ON transactions"
                " FOR EACH ROW EXECUTE FUNCTION test_poison()"
            )
        )
    try:
        yield
    finally:
        fix_poison(runtime)


def fix_poison(runtime: Runtime) -> None:
    with runtime.database.engine.begin() as connection:
        connection.execute(text("DROP TRIGGER IF EXISTS test_poison ON transactions"))
        connection.execute(text("DROP FUNCTION IF EXISTS test_poison()"))


def _statuses(runtime: Runtime) -> dict[str, str]:
    with runtime.database.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT idempotency_key, status FROM posting_requests")
        ).all()
    return {row.idempotency_key: row.status for row in rows}


@pytest.mark.slow  # API and worker processes
def test_a_poison_posting_is_isolated_then_replayed_by_an_operator(
    runtime: Runtime, processes: Processes, poison_reference: None
) -> None:
    api = processes.start_api()
    payer, payee = open_accounts(api, 2)
    bodies = [
        transfer(payer, payee, "1.00", f"PP-{i}", **({"reference": "POISON"} if i == 7 else {}))
        for i in range(30)
    ]
    with httpx.Client(base_url=api, timeout=30, headers=AUTHORIZED) as client:
        response = client.post("/api/v1/transactions/batch", json={"transactions": bodies})
        assert response.status_code == 200
    processes.start_worker()
    wait_until_drained(runtime, timeout_s=60)
    statuses = _statuses(runtime)
    assert statuses.pop("PP-7") == "failed"
    assert set(statuses.values()) == {"posted"}, "the rest of the partition was not applied"

    failed = ledgerflow_cli(processes.env, "ops", "failed", "--json")
    assert failed.returncode == 0, failed.stderr
    [listed] = json.loads(failed.stdout)
    assert listed["idempotency_key"] == "PP-7"
    assert listed["error_code"] == "apply_failed"
    assert "settlement bank refused the reference" in listed["error_detail"]

    fix_poison(runtime)
    retried = ledgerflow_cli(processes.env, "ops", "retry", "PP-7")
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert "requeued 1" in retried.stdout
    deadline = time.monotonic() + 30
    while _statuses(runtime)["PP-7"] != "posted":
        assert time.monotonic() < deadline, "the replayed posting was not applied"
        time.sleep(0.2)
    with httpx.Client(base_url=api, timeout=30, headers=AUTHORIZED) as client:
        assert client.get(f"/api/v1/accounts/{payer}/balance").json()["balance"] == "30.00"
    assert ledgerflow_cli(processes.env, "ops", "retry", "PP-7").returncode == 1  # nothing failed
    assert ledgerflow_cli(processes.env, "verify", "--grace-s", "0").returncode == 0


@pytest.mark.slow  # two `ledgerflow` processes
def test_ops_retry_needs_keys_or_all(runtime: Runtime) -> None:
    assert ledgerflow_cli(runtime_env(runtime), "ops", "retry").returncode == 2
    assert ledgerflow_cli(runtime_env(runtime), "ops", "retry", "K", "--all").returncode == 2


def _accounts_in_two_partitions(client: httpx.Client, partitions: int) -> tuple[str, str]:
    """Two asset accounts whose postings route to different partitions."""
    first = open_account(client)
    while True:
        other = open_account(client)
        if partition_of(AccountId(_uuid(other)), partitions) != partition_of(
            AccountId(_uuid(first)), partitions
        ):
            return first, other


def _uuid(text_id: str) -> uuid.UUID:
    return uuid.UUID(text_id)


def _probe_until_refused(client: httpx.Client, debit: str, credit: str, prefix: str) -> None:
    """Post from `debit` under fresh keys until the backpressure gate refuses one.

    The gate acts on a reading it refreshes in the background; a refusal shows that the
    reading has caught up. Nothing drains, so what it read only grows and the next posting
    is refused too. Accepted probes stay queued behind the postings already there.
    """
    deadline = time.monotonic() + 10
    attempt = 0
    while True:
        body = transfer(debit, credit, "1.00", f"{prefix}-{attempt}")
        probe = client.post("/api/v1/transactions", json=body)
        if probe.status_code != 202:
            assert probe.status_code in (429, 503), probe.text
            return
        assert time.monotonic() < deadline, "the backpressure gate never refused in 10 s"
        attempt += 1
        time.sleep(0.05)


def test_backpressure_answers_429_for_a_lagging_partition_and_recovers(
    runtime: Runtime,
) -> None:
    settings = runtime.settings.model_copy(update={"lag_max_s": 1.0, "lag_refresh_s": 0.1})
    gated = build_runtime(settings)
    try:
        with (
            serve(gated) as url,
            httpx.Client(base_url=url, timeout=30, headers=AUTHORIZED) as client,
        ):
            lagging, other = _accounts_in_two_partitions(client, settings.partitions)
            sink = open_account(client, account_type="liability")
            first = client.post("/api/v1/transactions", json=transfer(lagging, sink, "1.00", "B-1"))
            assert first.status_code == 202
            # No worker runs: the partition's oldest posting ages past 1 s.
            _probe_until_refused(client, lagging, sink, "B-PROBE")
            refused = client.post(
                "/api/v1/transactions", json=transfer(lagging, sink, "1.00", "B-2")
            )
            assert refused.status_code == 429
            assert refused.headers["content-type"] == "application/problem+json"
            assert int(refused.headers["retry-after"]) >= 1
            problem = refused.json()
            assert problem["code"] == "partition_lagging"
            assert problem["lag_max_s"] == 1.0
            assert problem["lag_s"] > 1.0
            assert problem["partition"] == partition_of(
                AccountId(_uuid(lagging)), settings.partitions
            )
            assert problem["retry_after_s"] == int(refused.headers["retry-after"])
            batch = client.post(
                "/api/v1/transactions/batch",
                json={
                    "transactions": [
                        transfer(other, sink, "1.00", "B-3"),
                        transfer(lagging, sink, "1.00", "B-4"),
                    ]
                },
            )
            assert batch.status_code == 429, "a batch touching the lagging partition is refused"
            assert client.get("/api/v1/postings/B-2").status_code == 404, "nothing was stored"
            assert client.get("/api/v1/postings/B-3").status_code == 404, "nothing was stored"
            unaffected = client.post(
                "/api/v1/transactions", json=transfer(other, sink, "1.00", "B-5")
            )
            assert unaffected.status_code == 202, "other partitions keep accepting"

            drain(runtime)  # the workers catch up
            deadline = time.monotonic() + 10
            while True:
                again = client.post(
                    "/api/v1/transactions", json=transfer(lagging, sink, "1.00", "B-2")
                )
                if again.status_code == 202:
                    break
                assert again.status_code == 429
                assert time.monotonic() < deadline, "backpressure did not lift after the drain"
                time.sleep(0.1)
    finally:
        gated.database.dispose()


def test_backpressure_answers_503_when_the_whole_backlog_is_full(runtime: Runtime) -> None:
    settings = runtime.settings.model_copy(update={"queued_max": 3, "lag_refresh_s": 0.1})
    gated = build_runtime(settings)
    try:
        with (
            serve(gated) as url,
            httpx.Client(base_url=url, timeout=30, headers=AUTHORIZED) as client,
        ):
            payer, payee = open_account(client), open_account(client)
            for i in range(4):
                body = transfer(payer, payee, "1.00", f"F-{i}")
                assert client.post("/api/v1/transactions", json=body).status_code == 202
            _probe_until_refused(client, payer, payee, "F-PROBE")
            refused = client.post(
                "/api/v1/transactions", json=transfer(payer, payee, "1.00", "F-9")
            )
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "5"
            assert refused.json()["code"] == "backlog_full"
            assert refused.json()["queued_max"] == 3
    finally:
        gated.database.dispose()


def test_metrics_parse_and_show_partitions_workers_and_batches(
    client: httpx.Client, runtime: Runtime
) -> None:
    payer, payee = open_account(client), open_account(client)
    for i in range(5):
        body = transfer(payer, payee, "1.00", f"M-{i}")
        assert client.post("/api/v1/transactions", json=body).status_code == 202
    refused = transfer(payee, payer, "1.00", "M-R")
    refused["entries"][0]["account_id"] = "00000000-0000-4000-8000-000000000000"
    assert client.post("/api/v1/transactions", json=refused).status_code == 202
    drain(runtime)
    response = client.get("/metrics")
    assert response.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(response.text)}

    def sample(name: str, **labels: str) -> float:
        for family in families.values():
            for found in family.samples:
                if found.name == name and found.labels == labels:
                    return float(found.value)
        raise AssertionError(f"no sample {name} {labels}")

    for partition in range(runtime.settings.partitions):
        assert sample("ledgerflow_partition_lag_seconds", partition=str(partition)) >= 0
    posted = sample("ledgerflow_postings_finished_total", outcome="posted", code="")
    assert posted == 5
    rejected = sample(
        "ledgerflow_postings_finished_total", outcome="rejected", code="account_not_found"
    )
    assert rejected == 1
    assert sample("ledgerflow_batch_size_count") >= 1
    assert sample("ledgerflow_batch_size_sum") == 6
    assert sample("ledgerflow_apply_seconds_count") >= 1
    assert sample("ledgerflow_intake_commit_seconds_count") >= 1
    for name in (
        "ledgerflow_partition_queued_postings",
        "ledgerflow_partition_jobs_waiting",
        "ledgerflow_partition_owned",
        "ledgerflow_live_workers",
        "ledgerflow_lease_changes",
        "ledgerflow_worker_retries",
        "ledgerflow_batches_fenced",
        "ledgerflow_transient_retries",
        "ledgerflow_backpressure_refusals",
    ):
        assert name in families, name


@pytest.mark.slow  # API and worker processes
def test_ops_status_names_owners_depths_and_workers(runtime: Runtime, processes: Processes) -> None:
    api = processes.start_api()
    payer, payee = open_accounts(api, 2)
    worker = processes.start_worker()
    deadline = time.monotonic() + 20
    while True:
        status = ledgerflow_cli(processes.env, "ops", "status", "--json")
        assert status.returncode == 0, status.stderr
        report = json.loads(status.stdout)
        # A worker records what it owns in the registry just after its claim commits.
        registered_partitions = sum(len(w["partitions"]) for w in report["workers"])
        if report["totals"]["unowned_partitions"] == 0 and registered_partitions:
            break
        assert time.monotonic() < deadline, "the worker never owned every partition"
        time.sleep(0.3)
    with runtime.database.engine.connect() as connection:
        autovacuum = connection.exec_driver_sql("SHOW autovacuum").scalar_one() == "on"
    assert report["database"] == {"autovacuum": autovacuum}
    [registered] = report["workers"]
    assert f".{worker.pid}." in registered["name"]
    assert registered["live"] is True
    assert sorted(registered["partitions"]) == list(range(runtime.settings.partitions))
    assert {row["owner"] for row in report["partitions"]} == {registered["name"]}
    with httpx.Client(base_url=api, timeout=30, headers=AUTHORIZED) as http:
        body = transfer(payer, payee, "1.00", "S-1")
        assert http.post("/api/v1/transactions?wait=10", json=body).status_code == 201
    table = ledgerflow_cli(processes.env, "ops", "status")
    assert table.returncode == 0
    assert registered["name"] in table.stdout
    assert "applied/s" in table.stdout
