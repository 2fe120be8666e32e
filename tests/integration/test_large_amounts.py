"""No account can be frozen (issue 11), on both stores.

With BIGINT totals, one posting of 92,233,720,368,547,658.07 USD that debited and credited
one account took both of its totals to the limit, and the account refused every later
posting with `balance_overflow`; `ledgerflow verify` crashed on SQLite once a sum passed
2**63 - 1. Now intake refuses that posting, no entry is above the largest amount of one
entry, totals have 38 digits, and verify sums without overflowing.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.exc import DBAPIError

from ledger_core.money import BIGINT_MAX, TOTAL_MAX
from ledger_core.store.audit import audit
from ledger_core.store.tables import accounts
from runtime.context import Runtime
from tests.integration.conftest import (
    STORES,
    bearer,
    count_rows,
    drain,
    open_account,
    serve,
    transfer,
)

pytestmark = pytest.mark.parametrize("runtime", STORES, indirect=True)

THE_FREEZE = "92233720368547658.07"
LARGEST = "10000000000000.00"  # the default largest amount of one entry, 10**15 cents
# 32 debits and 32 credits of the largest amount: the most one posting can add to one
# account's total.
PER_POSTING_MINOR = 32 * 10**15
# Enough postings of that to take a total from zero past BIGINT.
POSTINGS = BIGINT_MAX // PER_POSTING_MINOR + 2


def _largest_posting(payer: str, payee: str, key: str) -> dict[str, Any]:
    leg = {"amount": LARGEST}
    return {
        "idempotency_key": key,
        "currency": "USD",
        "entries": [{"account_id": payer, "direction": "debit", **leg}] * 32
        + [{"account_id": payee, "direction": "credit", **leg}] * 32,
    }


def _totals(client: httpx.Client, account: str) -> tuple[str, str]:
    balance = client.get(f"/api/v1/accounts/{account}/balance").json()
    return balance["debits_posted"], balance["credits_posted"]


def test_the_posting_that_froze_an_account_is_refused_and_the_account_takes_credits(
    client: httpx.Client, runtime: Runtime
) -> None:
    wallet, cash = open_account(client, account_type="liability"), open_account(client)

    response = client.post("/api/v1/transactions", json=transfer(wallet, wallet, THE_FREEZE, "F"))

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "accounts_must_be_different"
    assert response.json()["detail"] == (
        f"account {wallet} is both debited and credited; "
        "a transaction moves money between different accounts"
    )
    assert count_rows(runtime, "posting_requests") == 0
    for key in ("CREDIT-1", "CREDIT-2"):
        body = transfer(cash, wallet, "1.00", key)
        assert client.post("/api/v1/transactions", json=body).status_code == 202
    drain(runtime)
    for key in ("CREDIT-1", "CREDIT-2"):
        assert client.get(f"/api/v1/postings/{key}").json()["status"] == "posted"
    assert _totals(client, wallet) == ("0.00", "2.00")


def test_the_freeze_amount_between_two_accounts_is_above_the_largest_entry(
    client: httpx.Client, runtime: Runtime
) -> None:
    wallet, cash = open_account(client, account_type="liability"), open_account(client)

    response = client.post("/api/v1/transactions", json=transfer(cash, wallet, THE_FREEZE, "F"))

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_amount"
    assert response.json()["detail"] == (
        f"amount {THE_FREEZE} USD is above the largest amount of one entry, {LARGEST} USD"
    )
    assert count_rows(runtime, "posting_requests") == 0


def test_largest_postings_take_totals_past_bigint_without_a_refusal_and_verify_passes(
    client: httpx.Client, runtime: Runtime
) -> None:
    """290 postings, each moving 32 times the largest entry from cash to the wallet, take
    cash's debits and the wallet's credits past 2**63 - 1 minor units; both accounts keep
    taking postings both ways, and verify checks the ledger (SQLite's sum() stopped with
    "integer overflow" here)."""
    cash, wallet = open_account(client), open_account(client, account_type="liability")
    bodies = [_largest_posting(cash, wallet, f"L-{n}") for n in range(POSTINGS)]
    response = client.post("/api/v1/transactions/batch", json={"transactions": bodies})
    assert [result.get("status") for result in response.json()["results"]] == ["queued"] * len(
        bodies
    )
    back = [transfer(wallet, cash, "0.01", "BACK"), transfer(cash, wallet, "0.01", "AGAIN")]
    for body in back:
        assert client.post("/api/v1/transactions", json=body).status_code == 202
    drain(runtime)

    statuses = [client.get(f"/api/v1/postings/{body['idempotency_key']}").json() for body in bodies]
    assert {status["status"] for status in statuses} == {"posted"}
    for body in back:
        assert client.get(f"/api/v1/postings/{body['idempotency_key']}").json()["status"] == (
            "posted"
        )
    assert POSTINGS * PER_POSTING_MINOR == 9_280_000_000_000_000_000 > BIGINT_MAX
    assert _totals(client, cash) == ("92800000000000000.01", "0.01")
    assert _totals(client, wallet) == ("0.01", "92800000000000000.01")

    report = audit(runtime.database, carried=set(), grace_s=0)

    assert report.ok, report.problems
    assert report.counts["transactions"] == POSTINGS + 2


def test_verify_names_a_total_past_bigint_that_its_entries_do_not_explain(
    client: httpx.Client, runtime: Runtime
) -> None:
    cash, wallet = open_account(client), open_account(client, account_type="liability")
    bodies = [_largest_posting(cash, wallet, f"L-{n}") for n in range(POSTINGS)]
    client.post("/api/v1/transactions/batch", json={"transactions": bodies})
    drain(runtime)
    stored_minor = POSTINGS * PER_POSTING_MINOR + 1
    with runtime.database.transaction() as repository:
        repository.connection.execute(
            update(accounts)
            .where(accounts.c.id == uuid.UUID(wallet))
            .values(credits_posted=stored_minor)
        )

    report = audit(runtime.database, carried=set(), grace_s=0)

    assert report.problems == [
        f"account {wallet}: stored debits/credits 0/{stored_minor} "
        f"but entries sum to 0/{stored_minor - 1}"
    ]


def test_the_database_refuses_a_total_beyond_thirty_eight_digits(runtime: Runtime) -> None:
    """The engine's `balance_overflow` bound, held by the column a second time: NUMERIC(38, 0)
    on PostgreSQL, a CHECK on the text's form on SQLite."""
    account = uuid.uuid4()
    with runtime.database.transaction() as repository:
        repository.connection.execute(
            accounts.insert().values(
                id=account,
                name="limit",
                account_type="asset",
                currency="USD",
                debits_posted=0,
                credits_posted=0,
            )
        )
    with runtime.database.transaction() as repository:
        repository.connection.execute(
            update(accounts).where(accounts.c.id == account).values(debits_posted=TOTAL_MAX)
        )
    for beyond in (TOTAL_MAX + 1, -1):
        with pytest.raises(DBAPIError), runtime.database.transaction() as repository:
            repository.connection.execute(
                update(accounts).where(accounts.c.id == account).values(credits_posted=beyond)
            )


def test_the_configured_entry_maximum_is_what_intake_and_the_worker_hold(
    runtime: Runtime, api_key: str
) -> None:
    """LEDGERFLOW_ENTRY_AMOUNT_MAX_MINOR reaches the API (single and batch) and the engine."""
    settings = runtime.settings.model_copy(update={"entry_amount_max_minor": 1000})
    small = dataclasses.replace(runtime, settings=settings)
    assert small.make_ledger().entry_amount_max_minor == 1000
    with (
        serve(small) as url,
        httpx.Client(base_url=url, timeout=10, headers=bearer(api_key)) as http,
    ):
        wallet = open_account(http)
        merchant = open_account(http, account_type="liability")
        within = http.post("/api/v1/transactions", json=transfer(wallet, merchant, "10.00", "IN"))
        assert within.status_code == 202
        above = http.post("/api/v1/transactions", json=transfer(wallet, merchant, "10.01", "OUT"))
        assert above.status_code == 422
        assert above.json()["code"] == "invalid_amount"
        batch = http.post(
            "/api/v1/transactions/batch",
            json={"transactions": [transfer(wallet, merchant, "10.01", "OUT-B")]},
        )
        assert batch.json()["results"][0]["code"] == "invalid_amount"
    assert count_rows(runtime, "posting_requests") == 1
