"""Direct mode: the same contract, each posting applied synchronously in its own transaction."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import httpx
import pytest

from runtime.context import Runtime
from tests.integration.conftest import AUTHORIZED, count_rows, open_account, serve, transfer


@pytest.fixture
def direct(runtime: Runtime) -> Iterator[httpx.Client]:
    settings = runtime.settings.model_copy(update={"mode": "direct"})
    with (
        serve(dataclasses.replace(runtime, settings=settings)) as url,
        httpx.Client(base_url=url, timeout=30, headers=AUTHORIZED) as client,
    ):
        yield client


def test_direct_mode_posts_before_answering(direct: httpx.Client, runtime: Runtime) -> None:
    wallet = open_account(direct)
    merchant = open_account(direct, account_type="liability")
    body = transfer(wallet, merchant, "12.50", "D-1")
    posted = direct.post("/api/v1/transactions", json=body)
    assert posted.status_code == 201
    assert posted.json()["status"] == "posted"
    assert direct.get(f"/api/v1/accounts/{wallet}/balance").json()["balance"] == "12.50"
    replay = direct.post("/api/v1/transactions", json=body)
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    conflict = direct.post("/api/v1/transactions", json=transfer(wallet, merchant, "1.00", "D-1"))
    assert conflict.status_code == 409
    assert count_rows(runtime, "transactions") == 1
    assert runtime.redis.keys("rq:queue:*") == []


def test_direct_mode_refuses_on_ledger_state_at_once(direct: httpx.Client) -> None:
    customer = open_account(
        direct, account_type="liability", flags=["debits_must_not_exceed_credits"]
    )
    cash = open_account(direct)
    refused = direct.post("/api/v1/transactions", json=transfer(customer, cash, "1.00", "D-2"))
    assert refused.status_code == 422
    assert refused.json()["code"] == "insufficient_funds"
    batch = direct.post(
        "/api/v1/transactions/batch",
        json={"transactions": [transfer(cash, customer, "5.00", f"DB-{i}") for i in range(3)]},
    )
    assert [r["status"] for r in batch.json()["results"]] == ["posted"] * 3
    assert direct.get(f"/api/v1/accounts/{customer}/balance").json()["balance"] == "15.00"
