"""Everything a client can send wrong: a 4xx problem+json with a stable code, nothing stored."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from runtime.context import Runtime
from tests.integration.conftest import STORES, count_rows, open_account, transfer

# The contract holds for both stores: PostgreSQL, and the embedded default of `ledgerflow dev`.
pytestmark = pytest.mark.parametrize("runtime", STORES, indirect=True)

WALLET = "wallet"
MERCHANT = "merchant"


def _entries(amounts: list[tuple[str, str, Any]]) -> list[dict[str, Any]]:
    return [{"account_id": a, "direction": d, "amount": amount} for a, d, amount in amounts]


def _with(**changes: Any) -> dict[str, Any]:
    body = transfer(WALLET, MERCHANT, "1.00", "BAD-1")
    body.update(changes)
    return body


def _amount(value: Any) -> dict[str, Any]:
    return _with(entries=_entries([(WALLET, "debit", value), (MERCHANT, "credit", value)]))


CASES: list[tuple[str, Any, int, str]] = [
    (
        "missing idempotency key",
        {k: v for k, v in _with().items() if k != "idempotency_key"},
        422,
        "invalid_idempotency_key",
    ),
    ("empty idempotency key", _with(idempotency_key=""), 422, "invalid_idempotency_key"),
    ("idempotency key with a slash", _with(idempotency_key="a/b"), 422, "invalid_idempotency_key"),
    ("amount as JSON number", _amount(1.0), 422, "invalid_amount"),
    ("amount as JSON integer", _amount(100), 422, "invalid_amount"),
    ("too many decimals", _amount("1.001"), 422, "invalid_amount"),
    ("zero amount", _amount("0.00"), 422, "invalid_amount"),
    ("negative amount", _amount("-1.00"), 422, "invalid_amount"),
    ("exponent notation", _amount("1e2"), 422, "invalid_amount"),
    ("NaN string", _amount("NaN"), 422, "invalid_amount"),
    ("Infinity string", _amount("Infinity"), 422, "invalid_amount"),
    ("beyond BIGINT", _amount("92233720368547758.08"), 422, "invalid_amount"),
    (
        "above the largest amount of one entry",
        _amount("10000000000000.01"),
        422,
        "invalid_amount",
    ),
    ("huge digits", _amount("9" * 400), 422, "invalid_amount"),
    ("unknown currency", _with(currency="ZZZ"), 422, "unsupported_currency"),
    ("lower-case currency", _with(currency="usd"), 422, "unsupported_currency"),
    (
        "bad direction",
        _with(entries=_entries([(WALLET, "up", "1.00"), (MERCHANT, "credit", "1.00")])),
        422,
        "invalid_request",
    ),
    ("one entry", _with(entries=_entries([(WALLET, "debit", "1.00")])), 422, "invalid_entries"),
    ("no entries", _with(entries=[]), 422, "invalid_entries"),
    (
        "65 entries",
        _with(entries=_entries([(WALLET, "debit", "1.00")] * 64 + [(MERCHANT, "credit", "64.00")])),
        422,
        "invalid_entries",
    ),
    (
        "one account on both sides",
        _with(entries=_entries([(WALLET, "debit", "1.00"), (WALLET, "credit", "1.00")])),
        422,
        "accounts_must_be_different",
    ),
    (
        "unbalanced",
        _with(entries=_entries([(WALLET, "debit", "1.00"), (MERCHANT, "credit", "2.00")])),
        422,
        "unbalanced",
    ),
    ("metadata not a map", _with(metadata=["a"]), 422, "invalid_metadata"),
    ("metadata non-string value", _with(metadata={"a": 1}), 422, "invalid_metadata"),
    (
        "metadata too many keys",
        _with(metadata={f"k{i}": "v" for i in range(17)}),
        422,
        "invalid_metadata",
    ),
    ("metadata long value", _with(metadata={"k": "v" * 513}), 422, "invalid_metadata"),
    ("unknown field", _with(amount="1.00"), 422, "invalid_request"),
    (
        "account id not a uuid",
        _with(entries=_entries([("x", "debit", "1.00"), (MERCHANT, "credit", "1.00")])),
        422,
        "invalid_request",
    ),
    ("body is a list", [], 422, "invalid_request"),
    ("reference too long", _with(reference="r" * 129), 422, "invalid_request"),
    ("NUL in reference", _with(reference="a\x00b"), 422, "invalid_text"),
    ("lone surrogate in description", _with(description="x\ud800"), 422, "invalid_text"),
    ("NUL in metadata value", _with(metadata={"k": "\x00"}), 422, "invalid_text"),
    ("surrogate in metadata key", _with(metadata={"\udfff": "v"}), 422, "invalid_text"),
]


def _post_json(client: httpx.Client, path: str, body: Any) -> httpx.Response:
    """Post JSON escaped to ASCII, so bodies may carry unpaired surrogates as \\uXXXX."""
    return client.post(path, content=json.dumps(body), headers={"content-type": "application/json"})


@pytest.fixture
def accounts(client: httpx.Client) -> dict[str, str]:
    return {
        WALLET: open_account(client, name="wallet"),
        MERCHANT: open_account(client, name="merchant", account_type="liability"),
    }


def _resolve(body: Any, accounts: dict[str, str]) -> Any:
    if isinstance(body, dict):
        return {k: _resolve(v, accounts) for k, v in body.items()}
    if isinstance(body, list):
        return [_resolve(v, accounts) for v in body]
    return accounts.get(body, body) if isinstance(body, str) else body


@pytest.mark.parametrize(("case", "body", "status", "code"), CASES, ids=[c[0] for c in CASES])
def test_bad_posting_is_a_problem_and_stores_nothing(
    client: httpx.Client,
    runtime: Runtime,
    accounts: dict[str, str],
    case: str,
    body: Any,
    status: int,
    code: str,
) -> None:
    response = _post_json(client, "/api/v1/transactions", _resolve(body, accounts))
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == code
    assert problem["status"] == status
    assert problem["detail"]
    assert count_rows(runtime, "posting_requests") == 0


def test_malformed_json_is_400(client: httpx.Client, runtime: Runtime) -> None:
    response = client.post(
        "/api/v1/transactions",
        content=b'{"idempotency_key": "x", ',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"
    assert count_rows(runtime, "posting_requests") == 0


def test_nan_literal_amount_is_refused(client: httpx.Client, accounts: dict[str, str]) -> None:
    body = (
        '{"idempotency_key": "N", "currency": "USD", "entries": ['
        f'{{"account_id": "{accounts[WALLET]}", "direction": "debit", "amount": NaN}},'
        f'{{"account_id": "{accounts[MERCHANT]}", "direction": "credit", "amount": NaN}}]}}'
    )
    response = client.post(
        "/api/v1/transactions", content=body, headers={"content-type": "application/json"}
    )
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"] == "application/problem+json"


def test_oversize_body_is_413(client: httpx.Client, runtime: Runtime) -> None:
    response = client.post(
        "/api/v1/transactions",
        content=b'{"x": "' + b"a" * (5 * 1024 * 1024) + b'"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"
    assert count_rows(runtime, "posting_requests") == 0


def test_x_client_id_decides_nothing(client: httpx.Client, accounts: dict[str, str]) -> None:
    """The key names the client; an X-Client-Id header, even a malformed one, is ignored."""
    response = client.post(
        "/api/v1/transactions",
        json=transfer(accounts[WALLET], accounts[MERCHANT], "1.00", "CID"),
        headers={"X-Client-Id": "bad client"},
    )
    assert response.status_code == 202
    assert client.get("/api/v1/postings/CID").status_code == 200


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"name": "x", "account_type": "cash", "currency": "USD"}, "invalid_request"),
        ({"name": "x", "account_type": "asset", "currency": "XYZ"}, "unsupported_currency"),
        ({"name": "", "account_type": "asset", "currency": "USD"}, "invalid_request"),
        (
            {"name": "x", "account_type": "asset", "currency": "USD", "flags": ["f"]},
            "invalid_request",
        ),
        ({"name": "x", "account_type": "asset"}, "invalid_request"),
        ({"name": "a\x00", "account_type": "asset", "currency": "USD"}, "invalid_text"),
        ({"name": "\ud9a0", "account_type": "asset", "currency": "USD"}, "invalid_text"),
        (
            {
                "name": "x",
                "account_type": "asset",
                "currency": "USD",
                "flags": ["debits_must_not_exceed_credits", "credits_must_not_exceed_debits"],
            },
            "invalid_flags",
        ),
    ],
)
def test_bad_account_is_a_problem_and_stores_nothing(
    client: httpx.Client, runtime: Runtime, body: dict[str, Any], code: str
) -> None:
    response = _post_json(client, "/api/v1/accounts", body)
    assert response.status_code == 422
    assert response.json()["code"] == code
    assert count_rows(runtime, "accounts") == 0


def test_bad_patch_and_paths(client: httpx.Client, accounts: dict[str, str]) -> None:
    patch = client.patch(f"/api/v1/accounts/{accounts[WALLET]}", json={"status": "closed"})
    assert patch.status_code == 422
    assert client.get("/api/v1/accounts/not-a-uuid").status_code == 422
    missing = client.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    method = client.delete("/api/v1/accounts")
    assert method.status_code == 405
    assert method.json()["code"] == "method_not_allowed"


@pytest.mark.parametrize("path", ["/api/v1/accounts", "/api/v1/transactions"])
@pytest.mark.parametrize(
    "cursor",
    [
        "cDkyMjMzNzIwMzY4NTQ3NzU4MDg",  # p9223372036854775808: one past BIGINT
        "cC0x",  # p-1
        "cDEyMw0K",  # p123 with a line break
        "not-a-cursor",
    ],
)
def test_a_cursor_not_produced_by_the_service_is_a_problem(
    client: httpx.Client, path: str, cursor: str
) -> None:
    response = client.get(path, params={"cursor": cursor})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_cursor"


def _raw(client: httpx.Client, path: str, content: bytes, **headers: str) -> httpx.Response:
    return client.post(
        path, content=content, headers={"content-type": "application/json", **headers}
    )


def _posting_text(accounts: dict[str, str], key: str = "RAW-1") -> str:
    return json.dumps(transfer(accounts[WALLET], accounts[MERCHANT], "1.00", key))


@pytest.mark.parametrize(
    "path", ["/api/v1/transactions", "/api/v1/transactions/batch", "/api/v1/accounts"]
)
@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(
            lambda text: text.replace(
                '"currency": "USD"', '"currency": "USD", "currency": "EUR"'
            ).encode(),
            id="duplicate key",
        ),
        pytest.param(lambda text: text.encode("utf-16"), id="UTF-16 with BOM"),
        pytest.param(lambda text: text.encode("utf-32"), id="UTF-32"),
        pytest.param(lambda text: text.encode() + b"\xff", id="invalid UTF-8"),
        pytest.param(lambda text: b"[" * 10_000 + b"]" * 10_000, id="10,000 deep"),
        pytest.param(lambda text: text.replace('"1.00"', "NaN").encode(), id="NaN"),
    ],
)
def test_json_that_json_loads_would_take_is_malformed(
    client: httpx.Client,
    runtime: Runtime,
    accounts: dict[str, str],
    path: str,
    encode: Any,
) -> None:
    text = _posting_text(accounts)
    if path.endswith("/batch"):
        text = f'{{"transactions": [{text}]}}'
    elif path.endswith("/accounts"):
        text = '{"name": "n", "account_type": "asset", "currency": "USD", "flags": ["1.00"]}'
    response = _raw(client, path, encode(text))
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "malformed_json"
    assert count_rows(runtime, "posting_requests") == 0


def test_forty_thousand_entries_are_refused_while_parsing(
    client: httpx.Client, runtime: Runtime, accounts: dict[str, str]
) -> None:
    entry = {"account_id": accounts[WALLET], "direction": "debit", "amount": "1.00"}
    body = {
        **transfer(accounts[WALLET], accounts[MERCHANT], "1.00", "BIG"),
        "entries": [entry] * 40_000,
    }
    response = _post_json(client, "/api/v1/transactions", body)
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "invalid_entries"
    assert "2 to 64 entries" in problem["detail"]
    assert count_rows(runtime, "posting_requests") == 0


def test_a_batch_item_of_forty_thousand_entries_is_refused_in_its_place(
    client: httpx.Client, accounts: dict[str, str]
) -> None:
    entry = {"account_id": accounts[WALLET], "direction": "debit", "amount": "1.00"}
    item = {
        **transfer(accounts[WALLET], accounts[MERCHANT], "1.00", "BIG"),
        "entries": [entry] * 40_000,
    }
    response = _post_json(client, "/api/v1/transactions/batch", {"transactions": [item]})
    assert response.status_code == 200
    [result] = response.json()["results"]
    assert result["code"] == "invalid_entries"


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("currency", "U" * 300_000, "unsupported_currency"),
        ("reference", "r" * 300_000, "invalid_request"),
        ("x" * 300_000, "1", "invalid_request"),
        ("idempotency_key", "k" * 300_000, "invalid_idempotency_key"),
    ],
)
def test_echoed_input_is_cut_short(
    client: httpx.Client, accounts: dict[str, str], field: str, value: str, code: str
) -> None:
    body = {**transfer(accounts[WALLET], accounts[MERCHANT], "1.00", "ECHO"), field: value}
    response = _post_json(client, "/api/v1/transactions", body)
    assert response.status_code == 422
    assert response.json()["code"] == code
    assert len(response.content) < 2_000, response.text[:300]


@pytest.mark.parametrize("prefer", ["wait=1e9", "wait=31", "wait=-1", "wait=soon"])
def test_a_prefer_wait_outside_0_to_30_is_422_and_stores_nothing(
    client: httpx.Client, runtime: Runtime, accounts: dict[str, str], prefer: str
) -> None:
    body = transfer(accounts[WALLET], accounts[MERCHANT], "1.00", "PREFER")
    response = client.post("/api/v1/transactions", json=body, headers={"Prefer": prefer})
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_request"
    assert count_rows(runtime, "posting_requests") == 0
    polled = client.get("/api/v1/postings/PREFER", headers={"Prefer": prefer})
    assert polled.status_code == 422


@pytest.mark.parametrize("wait", ["-1", "30.5", "1e9", "nan"])
def test_a_query_wait_outside_0_to_30_is_422(client: httpx.Client, wait: str) -> None:
    assert client.get("/api/v1/postings/K", params={"wait": wait}).status_code == 422


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/api/v1/transactions/batch", "POST"),
        ("OPTIONS", "/api/v1/transactions/batch", "POST"),
        ("OPTIONS", "/api/v1/transactions", "GET, POST"),
        ("PUT", "/api/v1/transactions", "GET, POST"),
        ("OPTIONS", "/api/v1/accounts", "GET, POST"),
        ("DELETE", "/api/v1/accounts/00000000-0000-4000-8000-000000000000", "GET, PATCH"),
        ("OPTIONS", "/api/v1/transactions/00000000-0000-4000-8000-000000000000", "GET"),
    ],
)
def test_a_method_a_path_does_not_have_is_405_naming_those_it_has(
    client: httpx.Client, method: str, path: str, allowed: str
) -> None:
    response = client.request(method, path)
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == allowed
    assert response.json()["code"] == "method_not_allowed"


def test_a_transaction_path_that_is_not_a_uuid_names_nothing(client: httpx.Client) -> None:
    response = client.get("/api/v1/transactions/not-a-uuid")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
