"""Refusals on ledger state: final for their key, recorded in PostgreSQL, one test per code."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import update

from api.answers import rejection_body
from ledger_core.model import AccountId, ClientId, Direction, Entry, Posting, Sender
from ledger_core.money import TOTAL_MAX
from ledger_core.rules import ENTRY_AMOUNT_MAX_MINOR
from ledger_core.store.tables import accounts
from runtime.context import Runtime
from tests.integration.conftest import STORES, count_rows, drain, open_account, transfer

# The contract holds for both stores: PostgreSQL, and the embedded default of `ledgerflow dev`.
pytestmark = pytest.mark.parametrize("runtime", STORES, indirect=True)


def _post_and_apply(
    client: httpx.Client, runtime: Runtime, body: dict[str, object]
) -> dict[str, object]:
    assert client.post("/api/v1/transactions", json=body).status_code == 202
    drain(runtime)
    status = client.get(f"/api/v1/postings/{body['idempotency_key']}").json()
    assert isinstance(status, dict)
    return status


def test_missing_account_is_rejected_and_final(client: httpx.Client, runtime: Runtime) -> None:
    wallet = open_account(client)
    ghost = "00000000-0000-4000-8000-00000000dead"
    body = transfer(wallet, ghost, "1.00", "R-NF")
    status = _post_and_apply(client, runtime, body)
    assert status["status"] == "rejected"
    assert status["error"] == {
        "code": "account_not_found",
        "detail": f"account {ghost} does not exist",
    }
    replay = client.post("/api/v1/transactions", json=body)
    assert replay.status_code == 422
    assert replay.headers["content-type"] == "application/problem+json"
    assert replay.json()["code"] == "account_not_found"
    assert replay.json()["posting_status"] == "rejected"
    runtime.redis.flushdb()
    assert client.post("/api/v1/transactions", json=body).json() == replay.json()
    assert count_rows(runtime, "transactions") == 0


def test_inactive_account_is_rejected(client: httpx.Client, runtime: Runtime) -> None:
    wallet, merchant = open_account(client), open_account(client, account_type="liability")
    client.patch(f"/api/v1/accounts/{merchant}", json={"status": "inactive"})
    status = _post_and_apply(client, runtime, transfer(wallet, merchant, "1.00", "R-IN"))
    assert status["error"]["code"] == "account_inactive"  # type: ignore[index]


def test_currency_mismatch_is_rejected(client: httpx.Client, runtime: Runtime) -> None:
    wallet = open_account(client, currency="USD")
    euro = open_account(client, currency="EUR", account_type="liability")
    status = _post_and_apply(client, runtime, transfer(wallet, euro, "1.00", "R-CUR"))
    assert status["error"]["code"] == "currency_mismatch"  # type: ignore[index]


def test_insufficient_funds_under_the_debit_flag(client: httpx.Client, runtime: Runtime) -> None:
    customer = open_account(
        client, account_type="liability", flags=["debits_must_not_exceed_credits"]
    )
    cash = open_account(client)
    status = _post_and_apply(client, runtime, transfer(customer, cash, "1.00", "R-FUNDS"))
    assert status["error"]["code"] == "insufficient_funds"  # type: ignore[index]


def test_credits_must_not_exceed_debits(client: httpx.Client, runtime: Runtime) -> None:
    wallet = open_account(client)
    capped = open_account(client, flags=["credits_must_not_exceed_debits"])
    status = _post_and_apply(client, runtime, transfer(wallet, capped, "1.00", "R-CAP"))
    assert status["error"]["code"] == "exceeds_debits"  # type: ignore[index]


def test_balance_overflow_is_rejected(client: httpx.Client, runtime: Runtime) -> None:
    """No history within the largest amount of one entry reaches the largest total (38
    digits), so the sink's credits are set one largest entry below it by hand."""
    source, sink = open_account(client, currency="JPY"), open_account(client, currency="JPY")
    with runtime.database.transaction() as repository:
        repository.connection.execute(
            update(accounts)
            .where(accounts.c.id == uuid.UUID(sink))
            .values(credits_posted=TOTAL_MAX - ENTRY_AMOUNT_MAX_MINOR)
        )
    largest = str(ENTRY_AMOUNT_MAX_MINOR)
    first = _post_and_apply(client, runtime, transfer(source, sink, largest, "R-MAX", "JPY"))
    assert first["status"] == "posted"
    assert client.get(f"/api/v1/accounts/{sink}/balance").json()["credits_posted"] == "9" * 38
    second = _post_and_apply(client, runtime, transfer(source, sink, "1", "R-OVER", "JPY"))
    assert second["error"] == {  # type: ignore[index]
        "code": "balance_overflow",
        "detail": f"account {sink} would pass the largest amount",
    }


@pytest.mark.parametrize(
    ("legs", "code", "title"),
    [
        pytest.param(
            [("w", "debit", 100), ("w", "credit", 100)],
            "accounts_must_be_different",
            "Accounts must be different",
            id="one-account-on-both-sides",
        ),
        pytest.param(
            [("w", "debit", 10**15 + 1), ("m", "credit", 10**15 + 1)],
            "invalid_amount",
            "Invalid amount",
            id="above-the-largest-amount-of-one-entry",
        ),
    ],
)
def test_a_posting_stored_before_a_rule_is_refused_when_applied(
    client: httpx.Client,
    runtime: Runtime,
    legs: list[tuple[str, str, int]],
    code: str,
    title: str,
) -> None:
    """Intake refuses both with 422; one accepted by an older version (or under a larger
    `entry_amount_max_minor`) is refused by the engine, final for its key."""
    named = {"w": open_account(client), "m": open_account(client, account_type="liability")}
    posting = Posting(
        idempotency_key="R-OLD",
        currency="USD",
        entries=tuple(
            Entry(AccountId(uuid.UUID(named[a])), Direction(d), amount) for a, d, amount in legs
        ),
    )
    [accepted] = runtime.ledger.accept([(Sender(ClientId("older"), "default"), posting)])
    assert accepted.created
    runtime.ledger.apply_next_batch(range(runtime.settings.partitions), 10)

    record = runtime.ledger.get_posting(ClientId("older"), "R-OLD")
    assert (record.status.value, record.error_code) == ("rejected", code)
    assert count_rows(runtime, "transactions") == 0
    for account in named.values():
        balance = client.get(f"/api/v1/accounts/{account}/balance").json()
        assert (balance["debits_posted"], balance["credits_posted"]) == ("0.00", "0.00")
    # What a waited POST or a replay answers for it: the rule's own title.
    problem = rejection_body(record)
    assert (problem["code"], problem["title"], problem["status"]) == (code, title, 422)


def test_wait_answers_422_with_the_refusal_code(client: httpx.Client, runtime: Runtime) -> None:
    wallet = open_account(client)
    ghost = "00000000-0000-4000-8000-00000000beef"
    results: list[httpx.Response] = []
    request = threading.Thread(
        target=lambda: results.append(
            client.post("/api/v1/transactions?wait=10", json=transfer(wallet, ghost, "1", "R-W"))
        )
    )
    request.start()
    for _ in range(50):
        if count_rows(runtime, "posting_requests"):
            break
        threading.Event().wait(0.05)
    drain(runtime)
    request.join(timeout=15)
    [response] = results
    assert response.status_code == 422
    assert response.json()["code"] == "account_not_found"
    assert response.json()["status"] == 422


def test_twenty_concurrent_debits_with_room_for_ten_post_exactly_ten(
    client: httpx.Client, runtime: Runtime
) -> None:
    customer = open_account(
        client, account_type="liability", flags=["debits_must_not_exceed_credits"]
    )
    cash = open_account(client)
    _post_and_apply(client, runtime, transfer(cash, customer, "10.00", "FUND"))

    def spend(i: int) -> int:
        body = transfer(customer, cash, "1.00", f"SPEND-{i}")
        return client.post("/api/v1/transactions", json=body).status_code

    with ThreadPoolExecutor(20) as pool:
        assert list(pool.map(spend, range(20))) == [202] * 20
    drain(runtime)
    statuses = [client.get(f"/api/v1/postings/SPEND-{i}").json()["status"] for i in range(20)]
    assert statuses.count("posted") == 10
    assert statuses.count("rejected") == 10
    balance = client.get(f"/api/v1/accounts/{customer}/balance").json()
    assert balance == {
        "account_id": customer,
        "currency": "USD",
        "debits_posted": "10.00",
        "credits_posted": "10.00",
        "balance": "0.00",
    }


def test_fifty_concurrent_requests_with_one_key_post_once(
    client: httpx.Client, runtime: Runtime
) -> None:
    wallet, merchant = open_account(client), open_account(client, account_type="liability")
    body = transfer(wallet, merchant, "7.00", "ONE-KEY")
    barrier = threading.Barrier(50)

    def send(_: int) -> int:
        barrier.wait()
        return client.post("/api/v1/transactions", json=body).status_code

    with ThreadPoolExecutor(50) as pool:
        codes = list(pool.map(send, range(50)))
    assert set(codes) == {202}
    assert count_rows(runtime, "posting_requests") == 1
    drain(runtime)
    assert count_rows(runtime, "transactions") == 1
    assert client.get(f"/api/v1/accounts/{wallet}/balance").json()["balance"] == "7.00"
