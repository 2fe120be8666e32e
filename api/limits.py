"""A cap on request body size and on the time its body takes to arrive, as problem+json.

The body is read up to the cap before the app sees it; a larger one (declared or
streamed) is answered 413 `body_too_large` without reaching any route. Starlette's own
limiter answers in plain text, which would break the promise that every client error is
a problem document. A body that has not arrived whole `read_timeout_s` after its headers
is answered 408 `request_timeout` and its connection closed: uvicorn bounds neither the
headers nor the body of a request, so a client sending half a request would otherwise
hold its connection (and a slot of the server) for as long as it likes.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import send_problem
from ledger_core.errors import BodyTooLarge, RequestTimeout


class BodySizeLimit:
    def __init__(self, app: ASGIApp, *, bytes_max: int, read_timeout_s: float) -> None:
        self.app = app
        self.bytes_max = bytes_max
        self.read_timeout_s = read_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.bytes_max:
            await self._refuse(send)
            return
        chunks: list[bytes] = []
        try:
            async with asyncio.timeout(self.read_timeout_s):
                too_large = await self._read(receive, chunks)
        except TimeoutError:
            detail = f"the body did not arrive within {self.read_timeout_s:g} s"
            await send_problem(send, RequestTimeout(detail), [(b"connection", b"close")])
            return
        if too_large:
            await self._refuse(send)
            return
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive, chunks: list[bytes]) -> bool:
        """Read the body into `chunks`; True as soon as it is larger than the cap."""
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.bytes_max:
                return True
            more = bool(message.get("more_body", False))
        return False

    async def _refuse(self, send: Send) -> None:
        problem = BodyTooLarge(f"request bodies are limited to {self.bytes_max} bytes")
        await send_problem(send, problem)
