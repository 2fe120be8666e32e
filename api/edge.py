"""What every request passes first: the Host check, and the header every answer carries.

A request whose Host header names none of `allowed_hosts` (LEDGERFLOW_ALLOWED_HOSTS) is
answered 400 `host_not_allowed` before it reaches any route. A web page that an attacker
points at a loopback service by DNS rebinding sends the attacker's name as its Host, so it
never gets past here; and since the service sends no redirect, no foreign Host is ever
reflected in a Location. An entry `*` allows any host, `*.example.com` any subdomain.

Every answer carries `X-Content-Type-Options: nosniff`, so that no browser reads a JSON or
problem document as HTML or script. Pure ASGI rather than Starlette's BaseHTTPMiddleware
(which costs a task and a stream per request): one wrapper of `send` per request.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import send_problem
from ledger_core.errors import HostNotAllowed, quoted

NOSNIFF = (b"x-content-type-options", b"nosniff")


def host_name(host_header: str) -> str:
    """The name of a Host header without its port: "[::1]:8000" -> "::1"."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else ""
    return host.partition(":")[0]


def _host_header(headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    for name, value in headers:
        if name == b"host":
            return value
    return b""


class Edge:
    def __init__(self, app: ASGIApp, *, allowed_hosts: Iterable[str]) -> None:
        self.app = app
        hosts = [host.strip().lower() for host in allowed_hosts if host.strip()]
        self.any_host = "*" in hosts
        self.names = frozenset(host.strip("[]") for host in hosts if not host.startswith("*."))
        self.suffixes = tuple(host[1:] for host in hosts if host.startswith("*."))

    def allows(self, name: str) -> bool:
        return self.any_host or name in self.names or (bool(name) and name.endswith(self.suffixes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self.any_host:
            header = _host_header(scope["headers"]).decode("latin-1")
            if not self.allows(host_name(header)):
                detail = (
                    f"the Host {quoted(header)} is not one this service answers to "
                    "(LEDGERFLOW_ALLOWED_HOSTS)"
                )
                await send_problem(send, HostNotAllowed(detail), [NOSNIFF])
                return

        async def send_nosniff(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), NOSNIFF]
            await send(message)

        await self.app(scope, receive, send_nosniff)
