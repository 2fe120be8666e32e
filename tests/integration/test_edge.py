"""What every request meets before a route, over real sockets: the Host check (no foreign
Host is answered or reflected), `nosniff` on every answer, and the deadline of a body that
does not arrive."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from api.app import create_app
from ledgerflow.http import HeaderDeadlineProtocol
from runtime.context import Runtime
from tests.integration.conftest import AUTHORIZED, serve

READ_TIMEOUT_S = 0.5


class QuickHeaders(HeaderDeadlineProtocol):
    header_timeout_s = READ_TIMEOUT_S


def _runtime(runtime: Runtime, **settings: Any) -> Runtime:
    """`runtime`'s database and Redis, served with other settings."""
    return Runtime(runtime.settings.model_copy(update=settings), runtime.database, runtime.redis)


@pytest.fixture
def edge_url(runtime: Runtime) -> Iterator[str]:
    with serve(_runtime(runtime, body_read_timeout_s=READ_TIMEOUT_S)) as url:
        yield url


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8000", "127.0.0.1.evil.example", "localhost.", ""]
)
def test_a_foreign_host_is_a_400_problem_before_any_route(edge_url: str, host: str) -> None:
    for path in ("/health", "/api/v1/accounts", "/api/v1/accounts/", "/openapi.json"):
        response = httpx.get(edge_url + path, headers={**AUTHORIZED, "Host": host})
        assert response.status_code == 400, (path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.json()["code"] == "host_not_allowed"
        assert "location" not in response.headers


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost:8000", "LOCALHOST", "[::1]:8000"])
def test_loopback_hosts_are_answered_by_default(edge_url: str, host: str) -> None:
    response = httpx.get(edge_url + "/api/v1/accounts", headers={**AUTHORIZED, "Host": host})
    assert response.status_code == 200, response.text


def test_configured_hosts_replace_the_default(runtime: Runtime) -> None:
    hosts = ["ledger.example.com", "*.internal.example"]
    with serve(_runtime(runtime, allowed_hosts=hosts)) as url:
        for host, status in [
            ("ledger.example.com", 200),
            ("api.internal.example:443", 200),
            ("127.0.0.1", 400),
            ("other.example.com", 400),
        ]:
            assert httpx.get(url + "/health", headers={"Host": host}).status_code == status
    with serve(_runtime(runtime, allowed_hosts=["*"])) as url:
        assert httpx.get(url + "/health", headers={"Host": "anything.example"}).status_code == 200


def test_a_trailing_slash_is_a_404_not_a_redirect(edge_url: str) -> None:
    response = httpx.get(edge_url + "/api/v1/accounts/", headers=AUTHORIZED)
    assert response.status_code == 404
    assert "location" not in response.headers


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/health", 200),
        ("GET", "/api/v1/accounts", 200),
        ("GET", "/api/v1/nothing", 404),
        ("POST", "/api/v1/transactions", 422),
        ("GET", "/metrics", 200),
        ("GET", "/openapi.json", 200),
        ("GET", "/ops", 200),
    ],
)
def test_every_answer_carries_nosniff(edge_url: str, method: str, path: str, status: int) -> None:
    response = httpx.request(method, edge_url + path, headers=AUTHORIZED, json={})
    assert response.status_code == status
    assert response.headers.get_list("x-content-type-options") == ["nosniff"]
    unauthenticated = httpx.request(method, edge_url + path)
    assert unauthenticated.status_code in (status, 401)
    assert unauthenticated.headers["x-content-type-options"] == "nosniff"


def _half_request(url: str, head: bytes, body: bytes) -> tuple[bytes, float]:
    """Send `head` and `body` (less than the head declares), then read until the server
    closes: what it answered and how long after the send it closed."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(head + body)
        sent_at = time.monotonic()
        received = b""
        deadline = sent_at + READ_TIMEOUT_S + 5
        while time.monotonic() < deadline:
            connection.settimeout(deadline - time.monotonic())
            try:
                chunk = connection.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                return received, time.monotonic() - sent_at
            received += chunk
        raise AssertionError(f"the server kept the connection open; it sent {received!r}")


def test_a_body_that_does_not_arrive_is_408_and_closed(edge_url: str) -> None:
    token = AUTHORIZED["Authorization"].encode()
    head = (
        b"POST /api/v1/transactions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Authorization: " + token + b"\r\nContent-Type: application/json\r\n"
        b"Content-Length: 400\r\n\r\n"
    )
    answer, closed_after_s = _half_request(edge_url, head, b'{"idempotency_key": "HALF", ')
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"request_timeout" in answer
    assert b"connection: close" in answer.lower()
    assert READ_TIMEOUT_S * 0.8 <= closed_after_s < READ_TIMEOUT_S + 2


def test_a_whole_body_is_not_held_to_the_deadline(edge_url: str) -> None:
    response = httpx.post(edge_url + "/api/v1/transactions", headers=AUTHORIZED, json={})
    assert response.status_code == 422


@pytest.mark.parametrize(
    "head",
    [
        b"",  # connected, sent nothing
        b"POST /api/v1/transacti",
        b"POST /api/v1/transactions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty",
    ],
)
def test_headers_that_do_not_arrive_close_the_connection(runtime: Runtime, head: bytes) -> None:
    with serve(runtime, http=QuickHeaders) as url:
        answer, closed_after_s = _half_request(url, head, b"")
    assert answer == b""
    assert READ_TIMEOUT_S * 0.8 <= closed_after_s < READ_TIMEOUT_S + 2


def _exchange(connection: socket.socket, request: bytes) -> bytes:
    """Send one request on `connection` and read its whole answer (it has a Content-Length)."""
    connection.sendall(request)
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(65536)
        assert chunk, f"the server closed the connection after {received!r}"
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        chunk = connection.recv(65536)
        assert chunk, "the server closed the connection mid-answer"
        body += chunk
    return head


def test_the_header_deadline_leaves_a_kept_alive_connection_alone(runtime: Runtime) -> None:
    request = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with serve(runtime, http=QuickHeaders) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as connection:
            assert _exchange(connection, request).startswith(b"HTTP/1.1 200 ")
            # Idle past the header deadline, within uvicorn's keep-alive (5 s): the next
            # request on the same connection is answered.
            time.sleep(READ_TIMEOUT_S * 1.5)
            head = _exchange(connection, request)
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"x-content-type-options: nosniff" in head.lower()


def test_an_unexpected_error_is_a_500_problem_with_nosniff(runtime: Runtime) -> None:
    app = create_app(runtime)

    def fail() -> None:
        raise RuntimeError("a programmer error")

    app.add_api_route("/fail", fail)

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return await client.get("/fail")

    response = asyncio.run(get())
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert response.headers["x-content-type-options"] == "nosniff"
