"""The audit trail: every change made with a key or by an operator is recorded with who,
what, which target and when, in the change's own transaction; nothing can edit it."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ledger_core.model import AccountId
from ledger_core.rules import partition_of
from runtime.context import Runtime
from tests.integration.conftest import (
    PARTITIONS,
    STORES,
    bearer,
    drain,
    ledgerflow_cli,
    new_key,
    open_account,
    runtime_env,
    transfer,
)


def events(http: httpx.Client, **filters: str) -> list[dict[str, Any]]:
    """Every event of the trail (following the cursor), those matching `filters`."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = {"limit": "50", **({"cursor": cursor} if cursor else {})}
        page = http.get("/api/v1/audit-events", params=params)
        assert page.status_code == 200, page.text
        found.extend(page.json()["items"])
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    positions = [event["position"] for event in found]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    return [e for e in found if all(e[name] == value for name, value in filters.items())]


def test_keys_created_and_revoked_by_an_operator_are_recorded(
    client: httpx.Client, runtime: Runtime
) -> None:
    env = runtime_env(runtime)
    created = ledgerflow_cli(
        env, "keys", "create", "--client", "audited", "--scopes", "ledger:read", "--json"
    )
    assert created.returncode == 0, created.stderr
    key_id = json.loads(created.stdout)["id"]
    assert ledgerflow_cli(env, "keys", "revoke", key_id).returncode == 0
    recorded = events(client, target=f"key:{key_id}")
    assert [e["action"] for e in recorded] == ["key.created", "key.revoked"]
    for event in recorded:
        assert event["key_id"] is None
        assert event["client"].startswith("operator:")
        assert event["details"]["client"] == "audited"
        assert event["at"]
    listed = ledgerflow_cli(env, "audit", "--json")
    assert listed.returncode == 0, listed.stderr
    lines = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [e["action"] for e in lines if e["target"] == f"key:{key_id}"] == [
        "key.created",
        "key.revoked",
    ]


def test_a_retry_over_http_is_recorded_with_the_key_that_asked(
    client: httpx.Client, runtime: Runtime
) -> None:
    wallet, merchant = open_account(client), open_account(client, account_type="liability")
    response = client.post("/api/v1/transactions", json=transfer(wallet, merchant, "1.00", "AU-1"))
    assert response.status_code == 202
    partition = partition_of(AccountId(uuid.UUID(wallet)), PARTITIONS)
    assert runtime.ledger.fail_oldest(partition, "apply_failed", "injected") is not None
    operator_key = new_key(runtime, client="night-shift", scopes=["ops"])
    missing = client.post("/api/v1/ops/retry", json={}, headers=bearer(operator_key))
    assert missing.status_code == 422
    retried = client.post(
        "/api/v1/ops/retry",
        json={"idempotency_keys": ["AU-1"], "client": "test"},
        headers=bearer(operator_key),
    )
    assert retried.status_code == 200, retried.text
    assert retried.json()["requeued"] == 1
    drain(runtime)
    assert client.get("/api/v1/postings/AU-1").json()["status"] == "posted"
    [event] = events(client, action="postings.retried", client="night-shift")
    assert event["key_id"].startswith("key_")
    assert event["details"]["keys"] == [["test", "AU-1"]]
    assert len(event["details"]["request_ids"]) == 1


@pytest.mark.parametrize("runtime", STORES, indirect=True)
def test_the_trail_is_append_only(runtime: Runtime) -> None:
    new_key(runtime, client="append-only")
    for statement in ("UPDATE audit_events SET action = 'x'", "DELETE FROM audit_events"):
        with (
            pytest.raises(DBAPIError, match="append-only"),
            runtime.database.engine.begin() as connection,
        ):
            connection.execute(text(statement))
    with runtime.database.engine.connect() as connection:
        count = connection.execute(
            text("SELECT count(*) FROM audit_events WHERE client = 'operator:tests'")
        ).scalar_one()
    assert count >= 1


@pytest.mark.parametrize("runtime", STORES, indirect=True)
def test_accounts_created_and_changed_with_a_key_are_recorded(
    client: httpx.Client, runtime: Runtime
) -> None:
    clerk = bearer(new_key(runtime, client="back-office", scopes=["accounts:write"]))
    created = client.post(
        "/api/v1/accounts",
        json={"name": "Audited", "account_type": "asset", "currency": "EUR"},
        headers=clerk,
    )
    assert created.status_code == 201
    account = created.json()["id"]
    changed = client.patch(
        f"/api/v1/accounts/{account}", json={"status": "inactive"}, headers=clerk
    )
    assert changed.status_code == 200
    refused = client.patch(
        f"/api/v1/accounts/{uuid.uuid4()}", json={"status": "inactive"}, headers=clerk
    )
    assert refused.status_code == 404
    recorded = events(client, target=f"account:{account}")
    assert [e["action"] for e in recorded] == ["account.created", "account.updated"]
    assert {(e["client"], e["ledger"]) for e in recorded} == {("back-office", "default")}
    assert len({e["key_id"] for e in recorded}) == 1
    assert recorded[0]["details"] == {"name": "Audited", "currency": "EUR"}
    assert recorded[1]["details"] == {"status": "inactive"}
    assert not [
        e for e in events(client, client="back-office") if e["target"] != f"account:{account}"
    ]
