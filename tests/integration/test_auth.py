"""API keys: every endpoint but /health and /ready needs one, scopes decide what it may
call, the key's client owns its postings, a revoked key stops working, the CLI's shape."""

from __future__ import annotations

import base64
import dataclasses
import json
import subprocess
import time

import httpx
import pytest
from sqlalchemy import text

from ledger_core.keys import SCOPES, hash_secret
from runtime.context import Runtime
from tests.integration.conftest import (
    STORES,
    bearer,
    count_rows,
    drain,
    ledgerflow_cli,
    new_key,
    open_account,
    runtime_env,
    serve,
    transfer,
)

PROTECTED = [
    ("POST", "/api/v1/accounts", "accounts:write"),
    ("GET", "/api/v1/accounts", "ledger:read"),
    ("GET", "/api/v1/accounts/3f1c2a9e-0000-4000-8000-000000000001", "ledger:read"),
    ("PATCH", "/api/v1/accounts/3f1c2a9e-0000-4000-8000-000000000001", "accounts:write"),
    ("GET", "/api/v1/accounts/3f1c2a9e-0000-4000-8000-000000000001/balance", "ledger:read"),
    ("POST", "/api/v1/transactions", "postings:write"),
    ("POST", "/api/v1/transactions/batch", "postings:write"),
    ("GET", "/api/v1/transactions", "ledger:read"),
    ("GET", "/api/v1/transactions/3f1c2a9e-0000-4000-8000-000000000001", "ledger:read"),
    ("GET", "/api/v1/postings/SOME-KEY", "postings:read"),
    ("GET", "/api/v1/ops/status", "ops"),
    ("GET", "/api/v1/ops/partitions", "ops"),
    ("GET", "/metrics", "ops"),
    ("GET", "/ops", "ops"),
    ("GET", "/api/v1/audit-events", "ops"),
    ("POST", "/api/v1/ops/retry", "ops"),
]


@pytest.mark.parametrize(("method", "path", "scope"), PROTECTED)
def test_every_endpoint_needs_a_key_with_its_scope(
    api_url: str, runtime: Runtime, method: str, path: str, scope: str
) -> None:
    with httpx.Client(base_url=api_url, timeout=10) as http:
        missing = http.request(method, path)
        assert missing.status_code == 401
        assert missing.headers["content-type"] == "application/problem+json"
        assert missing.json()["code"] == "unauthenticated"
        assert missing.headers["www-authenticate"].startswith("Bearer")
        unknown = http.request(method, path, headers=bearer("lf_not-a-key"))
        assert unknown.status_code == 401
        assert unknown.json()["code"] == "unauthenticated"
        others = [s for s in SCOPES if s != scope]
        lacking = http.request(method, path, headers=bearer(new_key(runtime, scopes=others)))
        assert lacking.status_code == 403
        assert lacking.json()["code"] == "forbidden"
        assert lacking.json()["scope"] == scope
        assert scope in lacking.json()["detail"]
        allowed = http.request(method, path, headers=bearer(new_key(runtime, scopes=[scope])))
        assert allowed.status_code not in (401, 403)


def test_health_and_ready_need_no_key_and_docs_do(api_url: str, api_key: str) -> None:
    with httpx.Client(base_url=api_url, timeout=10) as http:
        assert http.get("/health").status_code == 200
        assert http.get("/ready").status_code == 200
        assert http.get("/openapi.json").status_code == 401
        assert http.get("/docs").status_code == 401
        document = http.get("/openapi.json", headers=bearer(api_key)).json()
        assert set(document["components"]["securitySchemes"]) == {"bearer", "basic"}
        assert document["paths"]["/health"]["get"]["security"] == []


def test_the_ops_page_asks_a_browser_for_the_key_as_basic_credentials(
    api_url: str, api_key: str
) -> None:
    with httpx.Client(base_url=api_url, timeout=10) as http:
        challenged = http.get("/ops")
        assert challenged.status_code == 401
        schemes = [v.split()[0] for v in challenged.headers.get_list("www-authenticate")]
        assert schemes == ["Bearer", "Basic"]
        basic = base64.b64encode(f"{api_key}:".encode()).decode()
        page = http.get("/ops", headers={"Authorization": f"Basic {basic}"})
        assert page.status_code == 200
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["x-frame-options"] == "DENY"


def test_another_clients_key_cannot_see_or_replay_its_postings(
    client: httpx.Client, runtime: Runtime
) -> None:
    wallet, merchant = open_account(client), open_account(client, account_type="liability")
    shop_a = bearer(new_key(runtime, client="shop-a"))
    shop_b = bearer(new_key(runtime, client="shop-b"))
    body = transfer(wallet, merchant, "3.00", "A-ONLY")
    assert client.post("/api/v1/transactions", json=body, headers=shop_a).status_code == 202
    drain(runtime)
    assert client.get("/api/v1/postings/A-ONLY", headers=shop_a).json()["status"] == "posted"
    hidden = client.get("/api/v1/postings/A-ONLY", headers=shop_b)
    assert hidden.status_code == 404
    assert hidden.json()["code"] == "posting_not_found"
    # The same key under B is B's own posting, not a replay of A's.
    replay = client.post("/api/v1/transactions", json=body, headers=shop_b)
    assert replay.status_code == 202
    assert "idempotent-replayed" not in replay.headers


def test_a_revoked_key_stops_working_within_a_second(
    client: httpx.Client, runtime: Runtime
) -> None:
    secret = new_key(runtime, client="leaky")
    assert client.get("/api/v1/accounts", headers=bearer(secret)).status_code == 200
    [key] = [k for k in client_keys(runtime) if k["client"] == "leaky"]
    revoked = cli(runtime, "keys", "revoke", key["id"])
    assert revoked.returncode == 0, revoked.stderr
    revoked_at = time.monotonic()
    while client.get("/api/v1/accounts", headers=bearer(secret)).status_code != 401:
        assert time.monotonic() - revoked_at < 1.0, "the revoked key still works after 1 s"
        time.sleep(0.02)


def test_keys_cli_creates_lists_and_stores_only_a_hash(runtime: Runtime) -> None:
    created = cli(
        runtime,
        "keys",
        "create",
        "--client",
        "acme",
        "--scopes",
        "postings:write,postings:read",
        "--ledger",
        "acme-ledger",
        "--json",
    )
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    assert set(key) == {"id", "secret", "client", "ledger", "scopes"}
    assert (key["client"], key["ledger"]) == ("acme", "acme-ledger")
    assert sorted(key["scopes"]) == ["postings:read", "postings:write"]
    listed = [k for k in client_keys(runtime) if k["id"] == key["id"]]
    assert listed and "secret" not in listed[0]
    with runtime.database.engine.connect() as connection:
        stored = connection.execute(
            text("SELECT secret_hash FROM api_keys WHERE id = :id"), {"id": key["id"]}
        ).scalar_one()
        dumped = " ".join(
            str(v) for row in connection.execute(text("SELECT * FROM api_keys")) for v in row
        )
    assert stored == hash_secret(key["secret"])
    assert key["secret"] not in dumped
    refused = cli(runtime, "keys", "create", "--client", "acme", "--scopes", "ops,nope")
    assert refused.returncode == 2
    assert "nope" in refused.stderr
    moved = cli(runtime, "keys", "create", "--client", "acme", "--scopes", "ops")
    assert moved.returncode == 2, "a client's keys all name its one ledger"
    # The client of unauthenticated requests (LEDGERFLOW_AUTH=off) posted in `default`.
    elsewhere = ["--scopes", "postings:read", "--ledger", "other"]
    assert cli(runtime, "keys", "create", "--client", "default", *elsewhere).returncode == 2
    assert cli(runtime, "keys", "create", "--client", "default", "--scopes", "ops").returncode == 0


def test_with_auth_off_every_request_is_served_and_the_service_says_so(
    runtime: Runtime,
) -> None:
    settings = runtime.settings.model_copy(update={"auth": "off"})
    with (
        serve(dataclasses.replace(runtime, settings=settings)) as url,
        httpx.Client(base_url=url, timeout=10) as http,
    ):
        assert http.get("/api/v1/accounts").status_code == 200
        ready = http.get("/ready").json()
        assert any("authentication is off" in warning for warning in ready["warnings"])
        assert "authentication is off" in http.get("/ops").text


def client_keys(runtime: Runtime) -> list[dict[str, object]]:
    listed = cli(runtime, "keys", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    keys: list[dict[str, object]] = json.loads(listed.stdout)
    return keys


def cli(runtime: Runtime, *args: str) -> subprocess.CompletedProcess[str]:
    return ledgerflow_cli(runtime_env(runtime), *args)


@pytest.mark.parametrize("runtime", STORES, indirect=True)
def test_a_key_over_its_rate_gets_429_and_stores_nothing(
    client: httpx.Client, runtime: Runtime
) -> None:
    """A key of 0.5 requests/s has a burst of one: its second request at once is refused
    with Retry-After, nothing of it is stored; a key without a rate is not limited."""
    wallet, merchant = open_account(client), open_account(client, account_type="liability")
    limited = bearer(new_key(runtime, client="slow-shop", rate_per_s=0.5))
    first = transfer(wallet, merchant, "1.00", "RATE-1")
    assert client.post("/api/v1/transactions", json=first, headers=limited).status_code == 202
    refused = client.post(
        "/api/v1/transactions", json=transfer(wallet, merchant, "1.00", "RATE-2"), headers=limited
    )
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "rate_limited"
    assert refused.json()["rate_per_s"] == 0.5
    assert 1 <= int(refused.headers["retry-after"]) <= 2
    assert count_rows(runtime, "posting_requests") == 1
    unlimited = bearer(new_key(runtime, client="fast-shop"))
    answers = [client.get("/api/v1/accounts", headers=unlimited).status_code for _ in range(20)]
    assert answers == [200] * 20


def test_the_rate_is_shared_by_every_api_process(client: httpx.Client, runtime: Runtime) -> None:
    """Two API servers on one Redis take from one bucket: a key with a burst of one gets
    its first request through one server and is refused by the other."""
    limited = bearer(new_key(runtime, client="shared-rate", rate_per_s=0.2))
    with serve(runtime) as other_url:
        assert client.get("/api/v1/accounts", headers=limited).status_code == 200
        other = httpx.get(f"{other_url}/api/v1/accounts", headers=limited, timeout=10)
    assert other.status_code == 429
    assert other.json()["code"] == "rate_limited"
