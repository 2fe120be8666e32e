"""The HTTP contract of DESIGN.md section 4, row by row, against PostgreSQL and Redis."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from ledger_core.model import CURSOR_PATTERN
from runtime.context import Runtime
from tests.integration.conftest import (
    STORES,
    bearer,
    count_rows,
    drain,
    new_key,
    open_account,
    transfer,
)

# The contract holds for both stores: PostgreSQL, and the embedded default of `ledgerflow dev`.
pytestmark = pytest.mark.parametrize("runtime", STORES, indirect=True)


@pytest.fixture
def pair(client: httpx.Client) -> tuple[str, str]:
    wallet = open_account(client, name="User Wallet", account_type="asset")
    merchant = open_account(client, name="Merchant Settlement", account_type="liability")
    return wallet, merchant


def wait_until_queued_with_jobs(client: httpx.Client, count: int) -> None:
    """Return once the server reports `count` postings queued and a job waiting in every
    partition that holds one, so that a drain from now on applies them all."""
    deadline = time.monotonic() + 10
    while True:
        view = client.get("/api/v1/ops/partitions").json()
        busy = [row for row in view["partitions"] if row["queued"]]
        if view["queued"] == count and all(row["jobs_waiting"] for row in busy):
            return
        assert time.monotonic() < deadline, f"{count} postings were not queued in 10 s: {view}"
        time.sleep(0.02)


def test_account_is_created_read_listed_and_deactivated(client: httpx.Client) -> None:
    created = client.post(
        "/api/v1/accounts",
        json={
            "name": "Customer",
            "account_type": "liability",
            "currency": "JPY",
            "flags": ["debits_must_not_exceed_credits"],
        },
    )
    assert created.status_code == 201
    account = created.json()
    assert created.headers["location"] == f"/api/v1/accounts/{account['id']}"
    assert account["status"] == "active"
    assert account["flags"] == ["debits_must_not_exceed_credits"]
    assert client.get(f"/api/v1/accounts/{account['id']}").json() == account

    patched = client.patch(f"/api/v1/accounts/{account['id']}", json={"status": "inactive"})
    assert patched.status_code == 200
    assert patched.json()["status"] == "inactive"
    assert client.get(f"/api/v1/accounts/{account['id']}").json()["status"] == "inactive"


def test_accounts_list_pages_with_a_cursor(client: httpx.Client) -> None:
    ids = [open_account(client, name=f"a{i}") for i in range(5)]
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get("/api/v1/accounts", params=params).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids


def test_unknown_account_is_404_problem(client: httpx.Client) -> None:
    response = client.get("/api/v1/accounts/00000000-0000-4000-8000-000000000000")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "account_not_found"


def test_posting_is_queued_then_posted_and_moves_balances(
    client: httpx.Client, runtime: Runtime, pair: tuple[str, str]
) -> None:
    wallet, merchant = pair
    response = client.post(
        "/api/v1/transactions",
        json=transfer(wallet, merchant, "125.00", "PAY-1", reference="PAY-1001"),
    )
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    assert body["status_url"] == "/api/v1/postings/PAY-1"
    assert response.headers["location"] == body["status_url"]
    assert client.get(body["status_url"]).json()["status"] == "queued"

    assert drain(runtime)

    status = client.get(body["status_url"]).json()
    assert status["status"] == "posted"
    transaction = status["transaction"]
    assert transaction["reference"] == "PAY-1001"
    assert client.get(f"/api/v1/transactions/{transaction['id']}").json() == transaction
    wallet_balance = client.get(f"/api/v1/accounts/{wallet}/balance").json()
    merchant_balance = client.get(f"/api/v1/accounts/{merchant}/balance").json()
    assert wallet_balance == {
        "account_id": wallet,
        "currency": "USD",
        "debits_posted": "125.00",
        "credits_posted": "0.00",
        "balance": "125.00",
    }
    assert merchant_balance["balance"] == "125.00"
    assert merchant_balance["credits_posted"] == "125.00"


def test_wait_answers_201_once_applied_by_a_worker(
    client: httpx.Client, runtime: Runtime, pair: tuple[str, str]
) -> None:
    wallet, merchant = pair
    # RQ installs signal handlers, which only the main thread may do: drain in the main
    # thread while the waited request runs in another.
    results: list[httpx.Response] = []
    request = threading.Thread(
        target=lambda: results.append(
            client.post("/api/v1/transactions?wait=10", json=transfer(wallet, merchant, "5", "W-1"))
        )
    )
    request.start()
    wait_until_queued_with_jobs(client, 1)
    drain(runtime)
    request.join(timeout=15)
    [response] = results
    assert response.status_code == 201
    assert response.json()["status"] == "posted"
    assert response.json()["transaction"]["entries"][0]["amount"] == "5.00"
    # The waited posting's stages, in order, each a duration in milliseconds.
    stages = [part.strip().split(";dur=") for part in response.headers["server-timing"].split(",")]
    assert [name for name, _ in stages] == [
        "intake",
        "enqueue",
        "dequeue",
        "apply",
        "wakeup",
        "answer",
    ]
    assert all(float(duration) >= 0 for _, duration in stages)
    assert sum(float(duration) for _, duration in stages) < 15_000


def test_a_waited_answer_is_what_reading_the_posting_back_returns(
    client: httpx.Client, runtime: Runtime, pair: tuple[str, str]
) -> None:
    """A waiting request is answered from the worker's wake-up (transaction id, posting
    time, refusal) and the posting it sent: byte for byte what the status URL returns."""
    wallet, merchant = pair
    euros = open_account(client, currency="EUR")
    bodies = {
        "RICH-1": transfer(
            wallet,
            merchant,
            "12.30",
            "RICH-1",
            reference="R-1",
            description='say "hi" \\ naïve ✓ 支付',
            metadata={"quote": '"', "emoji": "💸"},
        ),
        "PLAIN-2": transfer(wallet, merchant, "7", "PLAIN-2"),
        "EUR-3": transfer(wallet, euros, "1.00", "EUR-3"),
    }
    answers: dict[str, httpx.Response] = {}

    def send(key: str) -> None:
        answers[key] = client.post("/api/v1/transactions?wait=10", json=bodies[key])

    senders = [threading.Thread(target=send, args=(key,)) for key in bodies]
    for sender in senders:
        sender.start()
    wait_until_queued_with_jobs(client, len(bodies))
    drain(runtime)
    for sender in senders:
        sender.join(timeout=15)
    assert {key: r.status_code for key, r in answers.items()} == {
        "RICH-1": 201,
        "PLAIN-2": 201,
        "EUR-3": 422,
    }
    for key in ("RICH-1", "PLAIN-2"):
        assert answers[key].json() == client.get(f"/api/v1/postings/{key}").json(), key
    rich = answers["RICH-1"].json()["transaction"]
    assert rich["description"] == 'say "hi" \\ naïve ✓ 支付'
    assert rich["metadata"] == {"quote": '"', "emoji": "💸"}
    refused = answers["EUR-3"].json()
    stored_error = client.get("/api/v1/postings/EUR-3").json()["error"]
    assert refused["code"] == stored_error["code"] == "currency_mismatch"
    assert refused["detail"] == stored_error["detail"]


def test_times_carry_their_utc_offset_and_ids_are_uuids(
    client: httpx.Client, runtime: Runtime, pair: tuple[str, str]
) -> None:
    wallet, merchant = pair
    account = client.get(f"/api/v1/accounts/{wallet}").json()
    assert (
        client.post("/api/v1/transactions", json=transfer(wallet, merchant, "2", "T-1")).status_code
        == 202
    )
    drain(runtime)
    transaction = client.get("/api/v1/postings/T-1").json()["transaction"]
    for moment in (account["created_at"], transaction["posted_at"]):
        assert datetime.fromisoformat(moment).utcoffset() == timedelta(0), moment
    assert str(uuid.UUID(account["id"])) == account["id"]
    assert str(uuid.UUID(transaction["id"])) == transaction["id"]
    assert client.get(f"/api/v1/transactions/{transaction['id']}").json() == transaction


def test_prefer_wait_header_is_honoured(
    client: httpx.Client, runtime: Runtime, pair: tuple[str, str]
) -> None:
    wallet, merchant = pair
    started = time.monotonic()
    response = client.post(
        "/api/v1/transactions",
        json=transfer(wallet, merchant, "1.00", "PREFER-1"),
        headers={"Prefer": "wait=1"},
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 202
    assert response.headers["preference-applied"] == "wait=1"
    assert 0.9 <= elapsed < 5


@pytest.mark.slow  # waits run out after 2 s and 1 s, on each store
def test_a_wait_that_runs_out_is_202_after_about_n_seconds(
    client: httpx.Client, pair: tuple[str, str]
) -> None:
    wallet, merchant = pair
    started = time.monotonic()
    response = client.post(
        "/api/v1/transactions?wait=2", json=transfer(wallet, merchant, "1.00", "SLOW-1")
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    assert 1.9 <= elapsed < 6

    started = time.monotonic()
    polled = httpx.get(
        f"{client.base_url}/api/v1/postings/SLOW-1?wait=1", timeout=10, headers=client.headers
    )
    assert polled.status_code == 200
    assert polled.json()["status"] == "queued"
    assert 0.9 <= time.monotonic() - started < 5


def test_wait_out_of_range_is_422(client: httpx.Client, pair: tuple[str, str]) -> None:
    wallet, merchant = pair
    response = client.post(
        "/api/v1/transactions?wait=31", json=transfer(wallet, merchant, "1.00", "W-31")
    )
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"
    assert response.headers["content-type"] == "application/problem+json"


def test_replay_returns_the_original_outcome_and_posts_once(
    client: httpx.Client, runtime: Runtime, pair: tuple[str, str]
) -> None:
    wallet, merchant = pair
    body = transfer(wallet, merchant, "10.00", "REPLAY-1")
    first = client.post("/api/v1/transactions", json=body)
    again = client.post("/api/v1/transactions", json=body)
    assert first.status_code == again.status_code == 202
    assert again.headers["idempotent-replayed"] == "true"
    drain(runtime)

    replay = client.post("/api/v1/transactions", json=body)
    assert replay.status_code == 201
    assert replay.json()["status"] == "posted"
    runtime.redis.flushdb()
    after_redis_forgot = client.post("/api/v1/transactions", json=body)
    assert after_redis_forgot.json() == replay.json()
    assert count_rows(runtime, "transactions") == 1
    assert client.get(f"/api/v1/accounts/{wallet}/balance").json()["balance"] == "10.00"


def test_same_key_different_body_is_409_and_changes_nothing(
    client: httpx.Client, runtime: Runtime, pair: tuple[str, str]
) -> None:
    wallet, merchant = pair
    assert (
        client.post(
            "/api/v1/transactions", json=transfer(wallet, merchant, "10.00", "K")
        ).status_code
        == 202
    )
    conflict = client.post("/api/v1/transactions", json=transfer(wallet, merchant, "11.00", "K"))
    assert conflict.status_code == 409
    assert conflict.headers["content-type"] == "application/problem+json"
    assert conflict.json()["code"] == "idempotency_conflict"
    drain(runtime)
    assert client.get(f"/api/v1/accounts/{wallet}/balance").json()["balance"] == "10.00"
    assert count_rows(runtime, "posting_requests") == 1


def test_keys_are_scoped_to_the_client(
    client: httpx.Client, runtime: Runtime, pair: tuple[str, str]
) -> None:
    """The key's client is the idempotency scope: two clients' postings under one
    idempotency key are two postings, and a third client cannot read either of them
    (404, as for a key never accepted), whatever X-Client-Id it sends."""
    wallet, merchant = pair
    for name in ("shop-a", "shop-b"):
        response = client.post(
            "/api/v1/transactions",
            json=transfer(wallet, merchant, "1.00", "SHARED-KEY"),
            headers=bearer(new_key(runtime, client=name)),
        )
        assert response.status_code == 202
    drain(runtime)
    assert count_rows(runtime, "transactions") == 2
    other = client.get(
        "/api/v1/postings/SHARED-KEY",
        headers={**bearer(new_key(runtime, client="shop-c")), "X-Client-Id": "shop-a"},
    )
    assert other.status_code == 404
    assert other.json()["code"] == "posting_not_found"


def test_status_of_a_key_never_accepted_is_404(client: httpx.Client) -> None:
    response = client.get("/api/v1/postings/NEVER-SEEN")
    assert response.status_code == 404
    assert response.json()["code"] == "posting_not_found"


def test_batch_answers_one_result_per_item_in_order(
    client: httpx.Client, runtime: Runtime, pair: tuple[str, str]
) -> None:
    wallet, merchant = pair
    items = [
        transfer(wallet, merchant, "1.00", "B-1"),
        transfer(wallet, merchant, "1.001", "B-2"),
        {"idempotency_key": "B-3"},
        transfer(wallet, merchant, "2.00", "B-4"),
        transfer(wallet, merchant, "1.00", "B-1"),
    ]
    response = client.post("/api/v1/transactions/batch", json={"transactions": items})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r.get("status") for r in results] == ["queued", 422, 422, "queued", "queued"]
    assert results[0]["status_url"] == "/api/v1/postings/B-1"
    assert results[1]["code"] == "invalid_amount"
    assert results[1]["index"] == 1
    assert results[2]["code"] == "invalid_request"
    drain(runtime)
    assert count_rows(runtime, "transactions") == 2
    assert client.get(f"/api/v1/accounts/{wallet}/balance").json()["balance"] == "3.00"


def test_batch_conflict_is_a_problem_for_that_item(
    client: httpx.Client, pair: tuple[str, str]
) -> None:
    wallet, merchant = pair
    client.post("/api/v1/transactions", json=transfer(wallet, merchant, "1.00", "C-1"))
    items = [transfer(wallet, merchant, "9.00", "C-1"), transfer(wallet, merchant, "1.00", "C-2")]
    results = client.post("/api/v1/transactions/batch", json={"transactions": items}).json()[
        "results"
    ]
    assert results[0]["code"] == "idempotency_conflict"
    assert results[0]["status"] == 409
    assert results[1]["status"] == "queued"


def test_batch_over_1000_items_is_refused(client: httpx.Client, pair: tuple[str, str]) -> None:
    wallet, merchant = pair
    items = [transfer(wallet, merchant, "1.00", f"X-{i}") for i in range(1001)]
    response = client.post("/api/v1/transactions/batch", json={"transactions": items})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"


def test_transactions_list_by_account_pages_with_a_cursor(
    client: httpx.Client, runtime: Runtime, pair: tuple[str, str]
) -> None:
    wallet, merchant = pair
    other = open_account(client, name="other")
    for i in range(3):
        client.post("/api/v1/transactions", json=transfer(wallet, merchant, "1.00", f"L-{i}"))
    client.post("/api/v1/transactions", json=transfer(other, merchant, "1.00", "L-other"))
    drain(runtime)
    first = client.get("/api/v1/transactions", params={"account_id": wallet, "limit": 2}).json()
    assert len(first["items"]) == 2
    second = client.get(
        "/api/v1/transactions",
        params={"account_id": wallet, "limit": 2, "cursor": first["next_cursor"]},
    ).json()
    assert second["next_cursor"] is None
    keys = [t["idempotency_key"] for t in first["items"] + second["items"]]
    assert sorted(keys) == ["L-0", "L-1", "L-2"]
    assert len(client.get("/api/v1/transactions").json()["items"]) == 4
    bad = client.get("/api/v1/transactions", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid_cursor"


def test_unknown_transaction_is_404(client: httpx.Client) -> None:
    response = client.get("/api/v1/transactions/00000000-0000-4000-8000-000000000000")
    assert response.status_code == 404
    assert response.json()["code"] == "transaction_not_found"


def test_health_ready_and_metrics(client: httpx.Client) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert "ledgerflow_intake_batch_size" in metrics.text


def test_openapi_documents_examples(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    assert "/api/v1/transactions" in schema["paths"]
    examples = schema["components"]["schemas"]["TransactionCreate"]["examples"]
    assert examples[0]["entries"][0]["amount"] == "125.00"
    assert client.get("/docs").status_code == 200


def test_partition_view_counts_what_is_queued(
    client: httpx.Client, runtime: Runtime, pair: tuple[str, str]
) -> None:
    wallet, merchant = pair
    for i in range(3):
        client.post("/api/v1/transactions", json=transfer(wallet, merchant, "1.00", f"OPS-{i}"))
    view = client.get("/api/v1/ops/partitions").json()
    assert view["queued"] == 3
    assert len(view["partitions"]) == runtime.settings.partitions
    [busy] = [row for row in view["partitions"] if row["queued"]]
    assert busy["jobs_waiting"] == 1  # enqueues of one partition coalesce into one job
    assert busy["oldest_age_s"] >= 0
    drain(runtime)
    view = client.get("/api/v1/ops/partitions").json()
    assert view["queued"] == 0
    assert all(row["jobs_waiting"] == 0 for row in view["partitions"])


def test_a_large_batch_keeps_every_text_exactly_and_replays_as_one(
    client: httpx.Client, runtime: Runtime, pair: tuple[str, str]
) -> None:
    """Large group commits travel as one JSON text: quotes, backslashes and non-ASCII text
    come back as sent, in acceptance order, and a replay of the batch stores nothing new."""
    payer, payee = pair
    bodies = [
        transfer(
            payer,
            payee,
            "1.00",
            f"BIG-{i:03}",
            description=f'say "{i}" \\ naïve ✓ 支付',
            metadata={"quote": '"', "backslash": "\\", "emoji": "💸", "n": str(i)},
        )
        for i in range(100)
    ]
    first = client.post("/api/v1/transactions/batch", json={"transactions": bodies})
    assert [r["status"] for r in first.json()["results"]] == ["queued"] * 100
    again = client.post("/api/v1/transactions/batch", json={"transactions": bodies})
    assert again.status_code == 200
    assert count_rows(runtime, "posting_requests") == 100
    drain(runtime)
    listed = client.get("/api/v1/transactions", params={"limit": 500}).json()["items"]
    assert [t["idempotency_key"] for t in listed] == [f"BIG-{i:03}" for i in range(100)]
    for i, stored in enumerate(listed):
        assert stored["description"] == f'say "{i}" \\ naïve ✓ 支付'
        assert stored["metadata"] == {"quote": '"', "backslash": "\\", "emoji": "💸", "n": str(i)}


def test_openapi_states_the_real_constraints(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    posting = schemas["TransactionCreate"]["properties"]
    assert posting["idempotency_key"]["pattern"] == "^[A-Za-z0-9._:~-]{1,128}$"
    assert posting["idempotency_key"]["maxLength"] == 128
    assert posting["currency"]["pattern"] == "^[A-Z]{3}$"
    assert (posting["entries"]["minItems"], posting["entries"]["maxItems"]) == (2, 64)
    amount = schemas["EntryCreate"]["properties"]["amount"]
    assert amount["pattern"] == "^(0|[1-9][0-9]*)(\\.[0-9]+)?$"
    assert schemas["BatchCreate"]["properties"]["transactions"]["maxItems"] == 1000
    metadata = next(s for s in posting["metadata"]["anyOf"] if s.get("type") == "object")
    assert metadata["maxProperties"] == 16
    assert metadata["additionalProperties"]["maxLength"] == 512

    def parameter(path: str, method: str, name: str) -> dict[str, Any]:
        operation = document["paths"][path][method]
        return next(p["schema"] for p in operation["parameters"] if p["name"] == name)

    for path in ("/api/v1/accounts", "/api/v1/transactions", "/api/v1/audit-events"):
        assert parameter(path, "get", "cursor")["pattern"] == CURSOR_PATTERN
    for path, method in (
        ("/api/v1/transactions", "post"),
        ("/api/v1/postings/{idempotency_key}", "get"),
    ):
        [wait] = [s for s in parameter(path, method, "wait")["anyOf"] if s["type"] == "number"]
        assert (wait["minimum"], wait["maximum"]) == (0, 30)
    key = parameter("/api/v1/postings/{idempotency_key}", "get", "idempotency_key")
    assert key["pattern"] == posting["idempotency_key"]["pattern"]
    responses = document["paths"]["/api/v1/transactions"]["post"]["responses"]
    assert {"400", "408", "413", "422"} <= set(responses)
