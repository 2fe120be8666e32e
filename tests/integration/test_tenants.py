"""Ledgers are tenants: a key sees, lists and posts to its own ledger's accounts and
transactions only, and another ledger's are answered exactly as ones that do not exist.

Two shops: "acme" (ledger `acme`) and "globex" (ledger `globex`), each with its own key of
every scope. What globex is told about acme's account or transaction is compared, field by
field, with what it is told about an id that was never used: the only difference allowed is
the id itself.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from ledger_core.store.audit import audit
from ledger_core.store.tables import accounts
from runtime.context import Runtime
from tests.integration.conftest import (
    STORES,
    bearer,
    count_rows,
    drain,
    new_key,
    open_account,
    serve,
    transfer,
)

pytestmark = pytest.mark.parametrize("runtime", STORES, indirect=True)

NEVER_USED = "00000000-0000-4000-8000-00000000beef"


@pytest.fixture
def acme(api_url: str, runtime: Runtime) -> Iterator[httpx.Client]:
    secret = new_key(runtime, client=f"acme-{uuid.uuid4().hex[:8]}", ledger="acme")
    with httpx.Client(base_url=api_url, timeout=40, headers=bearer(secret)) as http:
        yield http


@pytest.fixture
def globex(api_url: str, runtime: Runtime) -> Iterator[httpx.Client]:
    secret = new_key(runtime, client=f"globex-{uuid.uuid4().hex[:8]}", ledger="globex")
    with httpx.Client(base_url=api_url, timeout=40, headers=bearer(secret)) as http:
        yield http


def without(body: dict[str, Any], identifier: str) -> dict[str, Any]:
    """`body` with `identifier` replaced wherever it appears in a text field."""
    return {
        name: value.replace(identifier, "<id>") if isinstance(value, str) else value
        for name, value in body.items()
    }


def applied(http: httpx.Client, runtime: Runtime, body: dict[str, Any]) -> httpx.Response:
    """POST `body`, apply what is queued, and POST it again: the replay answers with the
    outcome (201 with the transaction, or the 422 problem of the refusal)."""
    assert http.post("/api/v1/transactions", json=body).status_code == 202
    drain(runtime)
    return http.post("/api/v1/transactions", json=body)


def answered(response: httpx.Response, identifier: str) -> tuple[int, str, dict[str, Any]]:
    return (
        response.status_code,
        response.headers["content-type"],
        without(response.json(), identifier),
    )


def test_another_ledgers_account_is_404_as_one_never_opened(
    acme: httpx.Client, globex: httpx.Client
) -> None:
    theirs = open_account(acme, name="acme wallet")
    for path in ("/api/v1/accounts/{}", "/api/v1/accounts/{}/balance"):
        hidden = globex.get(path.format(theirs))
        missing = globex.get(path.format(NEVER_USED))
        assert hidden.status_code == 404
        assert hidden.json()["code"] == "account_not_found"
        assert answered(hidden, theirs) == answered(missing, NEVER_USED)
        assert acme.get(path.format(theirs)).status_code == 200

    patched = globex.patch(f"/api/v1/accounts/{theirs}", json={"status": "inactive"})
    patched_missing = globex.patch(f"/api/v1/accounts/{NEVER_USED}", json={"status": "inactive"})
    assert patched.status_code == 404
    assert answered(patched, theirs) == answered(patched_missing, NEVER_USED)
    assert acme.get(f"/api/v1/accounts/{theirs}").json()["status"] == "active"


def test_each_ledger_lists_its_own_accounts_only(
    acme: httpx.Client, globex: httpx.Client, client: httpx.Client
) -> None:
    acme_ids = [open_account(acme, name=f"acme {i}") for i in range(3)]
    globex_ids = [open_account(globex, name=f"globex {i}") for i in range(2)]
    default_id = open_account(client, name="default")

    def listed(http: httpx.Client, limit: int) -> list[str]:
        ids: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
            page = http.get("/api/v1/accounts", params=params).json()
            ids += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                return ids

    assert listed(acme, 2) == acme_ids
    assert listed(globex, 1) == globex_ids
    assert listed(client, 100) == [default_id]


def test_posting_to_another_ledgers_account_is_refused_as_a_missing_one(
    acme: httpx.Client, globex: httpx.Client, runtime: Runtime
) -> None:
    """globex credits, then debits, acme's account: both are `account_not_found`, with the
    answer globex gets for an account that was never opened, replayed or polled."""
    theirs = open_account(acme, name="acme wallet", account_type="liability")
    acme_cash = open_account(acme, name="acme cash")
    own = open_account(globex, name="globex cash")

    def waited(body: dict[str, Any]) -> httpx.Response:
        return applied(globex, runtime, body)

    credit = waited(transfer(own, theirs, "1.00", "G-CREDIT"))
    debit = waited(transfer(theirs, own, "1.00", "G-DEBIT"))
    missing = waited(transfer(own, NEVER_USED, "1.00", "G-MISSING"))
    assert credit.status_code == 422
    assert credit.json()["code"] == "account_not_found"
    assert credit.json()["detail"] == f"account {theirs} does not exist"
    expected = answered(missing, NEVER_USED)
    for refused, key in ((credit, "G-CREDIT"), (debit, "G-DEBIT")):
        status, media_type, body = answered(refused, theirs)
        assert (status, media_type) == expected[:2]
        assert without(body, key) == without(expected[2], "G-MISSING")

    polled = globex.get("/api/v1/postings/G-CREDIT").json()
    polled_missing = globex.get("/api/v1/postings/G-MISSING").json()
    assert polled["status"] == "rejected"
    assert polled["error"] == {
        "code": "account_not_found",
        "detail": f"account {theirs} does not exist",
    }
    assert without(polled["error"], theirs) == without(polled_missing["error"], NEVER_USED)

    batch = globex.post(
        "/api/v1/transactions/batch",
        json={"transactions": [transfer(own, theirs, "2.00", "G-BATCH")]},
    )
    assert batch.json()["results"][0]["status"] == "queued"
    drain(runtime)
    assert globex.get("/api/v1/postings/G-BATCH").json()["error"]["code"] == "account_not_found"

    assert count_rows(runtime, "transactions") == 0
    balance = acme.get(f"/api/v1/accounts/{theirs}/balance").json()
    assert (balance["debits_posted"], balance["credits_posted"]) == ("0.00", "0.00")
    # acme's own key posts to the same account.
    posted = applied(acme, runtime, transfer(acme_cash, theirs, "1", "A"))
    assert posted.status_code == 201, posted.text


def test_another_ledgers_transactions_are_not_seen(
    acme: httpx.Client, globex: httpx.Client, runtime: Runtime
) -> None:
    wallet = open_account(acme, name="acme wallet", account_type="liability")
    cash = open_account(acme, name="acme cash")
    posted = applied(acme, runtime, transfer(cash, wallet, "4.00", "A-1"))
    assert posted.status_code == 201, posted.text
    transaction_id = posted.json()["transaction"]["id"]

    assert acme.get(f"/api/v1/transactions/{transaction_id}").status_code == 200
    assert [t["id"] for t in acme.get("/api/v1/transactions").json()["items"]] == [transaction_id]
    mine = acme.get("/api/v1/transactions", params={"account_id": wallet}).json()
    assert [t["id"] for t in mine["items"]] == [transaction_id]

    hidden = globex.get(f"/api/v1/transactions/{transaction_id}")
    missing = globex.get(f"/api/v1/transactions/{NEVER_USED}")
    assert hidden.status_code == 404
    assert hidden.json()["code"] == "transaction_not_found"
    assert answered(hidden, transaction_id) == answered(missing, NEVER_USED)
    assert globex.get("/api/v1/transactions").json() == {"items": [], "next_cursor": None}
    by_account = globex.get("/api/v1/transactions", params={"account_id": wallet}).json()
    assert by_account == {"items": [], "next_cursor": None}
    # The posting's status belongs to its client: globex never sent A-1.
    assert globex.get("/api/v1/postings/A-1").status_code == 404


def test_a_key_without_a_ledger_and_its_accounts_are_in_default(
    client: httpx.Client, acme: httpx.Client, runtime: Runtime
) -> None:
    """`client` is the session's key, created without naming a ledger."""
    account = open_account(client)
    with runtime.database.engine.connect() as connection:
        stored = connection.execute(
            select(accounts.c.ledger).where(accounts.c.id == uuid.UUID(account))
        ).scalar_one()
    assert stored == "default"
    named = bearer(new_key(runtime, client=f"named-{uuid.uuid4().hex[:8]}", ledger="default"))
    assert client.get(f"/api/v1/accounts/{account}", headers=named).status_code == 200
    assert acme.get(f"/api/v1/accounts/{account}").status_code == 404


def test_direct_mode_refuses_another_ledgers_account_at_once(runtime: Runtime) -> None:
    settings = runtime.settings.model_copy(update={"mode": "direct"})
    acme_key = bearer(new_key(runtime, client=f"acme-{uuid.uuid4().hex[:8]}", ledger="acme"))
    globex_key = bearer(new_key(runtime, client=f"gx-{uuid.uuid4().hex[:8]}", ledger="globex"))
    with (
        serve(dataclasses.replace(runtime, settings=settings)) as url,
        httpx.Client(base_url=url, timeout=30, headers=acme_key) as acme_direct,
        httpx.Client(base_url=url, timeout=30, headers=globex_key) as globex_direct,
    ):
        theirs = open_account(acme_direct)
        own = open_account(globex_direct)
        refused = globex_direct.post(
            "/api/v1/transactions", json=transfer(own, theirs, "1.00", "D-X")
        )
        missing = globex_direct.post(
            "/api/v1/transactions", json=transfer(own, NEVER_USED, "1.00", "D-M")
        )
    assert refused.status_code == 422
    assert refused.json()["code"] == "account_not_found"
    status, media_type, body = answered(refused, theirs)
    expected = answered(missing, NEVER_USED)
    assert (status, media_type) == expected[:2]
    assert without(body, "D-X") == without(expected[2], "D-M")
    assert count_rows(runtime, "transactions") == 0


def test_verify_reports_an_entry_whose_account_is_in_another_ledger(
    acme: httpx.Client, runtime: Runtime
) -> None:
    """The engine and the foreign keys keep this from happening; were they bypassed (here
    with the database's checks switched off), `ledgerflow verify` would say so."""
    wallet = open_account(acme, account_type="liability")
    cash = open_account(acme)
    posted = applied(acme, runtime, transfer(cash, wallet, "1", "A-V"))
    assert posted.status_code == 201, posted.text
    assert audit(runtime.database, carried=set(), grace_s=0).ok

    if runtime.database.dialect == "postgresql":
        with runtime.database.engine.begin() as connection:
            connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
            connection.execute(
                text("UPDATE accounts SET ledger = 'globex' WHERE id = :id"),
                {"id": uuid.UUID(wallet)},
            )
            connection.execute(text("UPDATE transactions SET ledger = 'elsewhere'"))
    else:
        raw = runtime.database.engine.raw_connection()
        try:
            raw.execute("PRAGMA foreign_keys=OFF")
            raw.execute(
                "UPDATE accounts SET ledger = 'globex' WHERE id = ?", (uuid.UUID(wallet).hex,)
            )
            raw.execute("UPDATE transactions SET ledger = 'elsewhere'")
            # pysqlite may have opened a transaction of its own for the updates.
            raw.commit()
            raw.execute("PRAGMA foreign_keys=ON")
        finally:
            raw.close()

    report = audit(runtime.database, carried=set(), grace_s=0)
    assert not report.ok
    text_of = "\n".join(report.problems)
    assert f"names account {wallet} of ledger 'globex'" in text_of
    assert "is in ledger 'elsewhere' but its request in 'acme'" in text_of
