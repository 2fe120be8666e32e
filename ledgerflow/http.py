"""uvicorn's HTTP protocol with a deadline on each request's headers.

uvicorn (0.55) bounds the idle time between two requests of a kept-alive connection
(`timeout_keep_alive`), but not the time a request's headers take to arrive: a client that
connects and sends half a request line holds its connection, and a slot of the server, for
as long as it likes. This protocol closes a connection whose request headers are not
complete `header_timeout_s` after the connection opened or the request's first byte came.
The body has its own deadline in the app (`api.limits.BodySizeLimit`, 408).

`ledgerflow serve` and `ledgerflow dev` run uvicorn with it. It extends uvicorn's httptools
protocol (the one `uvicorn[standard]` picks), which is not a public API:
`tests/integration/test_edge.py` holds it to its promise on a real socket.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ledger_core.settings import Settings

HEADER_READ_TIMEOUT_S = Settings().header_read_timeout_s


class HeaderDeadlineProtocol(HttpToolsProtocol):
    header_timeout_s: float = HEADER_READ_TIMEOUT_S
    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._header_deadline = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_late(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            self.transport.close()
