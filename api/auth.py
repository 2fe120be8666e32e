"""Who is calling: the API key of a request, its client, ledger and scopes.

`Authorization: Bearer <secret>` on every endpoint but /health and /ready; HTTP Basic with
the secret as the user name (as Stripe takes its keys) also works, so a browser can open
/ops and /docs. No key, or an unknown or revoked one: 401 `unauthenticated`. A key
without the endpoint's scope: 403 `forbidden` naming the scope.

Each API process keeps what it looked up for `key_cache_s` (unknown secrets too, so a
client sending a wrong key does not cost a query per request): a revoked key stops
working everywhere within that time. With `LEDGERFLOW_AUTH=off` every request is the
"default" client of the "default" ledger with every scope. A key with a rate takes a
token per request from its bucket (`api.ratelimit`), after it is known and before its
scope is checked.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from api.ratelimit import RateLimiter
from ledger_core.access import Keys
from ledger_core.errors import Forbidden, Unauthenticated
from ledger_core.keys import (
    ACCOUNTS_WRITE,
    DEFAULT_LEDGER,
    LEDGER_READ,
    OPEN_CLIENT,
    OPS,
    POSTINGS_READ,
    POSTINGS_WRITE,
    SCOPES,
    ApiKey,
    hash_secret,
)
from ledger_core.model import ClientId
from ledger_core.settings import Settings
from ledger_core.trail import Actor

CACHE_ENTRIES_MAX = 10_000
AUTH_OFF_WARNING = (
    "authentication is off (LEDGERFLOW_AUTH=off): anyone who reaches this port can move"
    " money, read every posting and operate the service"
)


@dataclass(frozen=True, slots=True)
class Caller:
    """The identity a request acts as."""

    key_id: str | None
    client: ClientId
    ledger: str
    scopes: frozenset[str]

    @property
    def actor(self) -> Actor:
        """The caller as the audit trail names it."""
        return Actor(self.key_id, self.client, self.ledger)


OPEN_CALLER = Caller(None, ClientId(OPEN_CLIENT), DEFAULT_LEDGER, frozenset(SCOPES))


def presented_secret(authorization: str | None) -> str | None:
    """The secret of a Bearer or Basic (secret as user name) Authorization header."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, _, password = decoded.partition(":")
        return user or password or None
    return None


class Authenticator:
    def __init__(self, keys: Keys, settings: Settings, limiter: RateLimiter) -> None:
        self.keys = keys
        self.limiter = limiter
        self.enabled = settings.auth == "on"
        self.cache_s = settings.key_cache_s
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}

    async def caller(self, request: Request) -> Caller:
        if not self.enabled:
            return OPEN_CALLER
        secret = presented_secret(request.headers.get("authorization"))
        if secret is None:
            raise Unauthenticated("send the API key as `Authorization: Bearer <key>`")
        key = await self.key(secret)
        if key is None:
            raise Unauthenticated("the API key is unknown or revoked")
        await self.limiter.take(key)
        return Caller(key.id, key.client, key.ledger, key.scopes)

    async def key(self, secret: str) -> ApiKey | None:
        digest = hash_secret(secret)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        key = await asyncio.to_thread(self.keys.find, secret)
        if len(self._cache) >= CACHE_ENTRIES_MAX:
            self._cache.clear()
        self._cache[digest] = (now + self.cache_s, key)
        return key


def _requiring(scope: str | None) -> Callable[[Request], Awaitable[Caller]]:
    async def authorized(request: Request) -> Caller:
        authenticator: Authenticator = request.app.state.auth
        caller = await authenticator.caller(request)
        if scope is not None and scope not in caller.scopes:
            raise Forbidden(f"this key lacks the scope {scope!r}", scope=scope)
        return caller

    return authorized


AnyKey = Annotated[Caller, Depends(_requiring(None))]
PostingsWrite = Annotated[Caller, Depends(_requiring(POSTINGS_WRITE))]
PostingsRead = Annotated[Caller, Depends(_requiring(POSTINGS_READ))]
LedgerRead = Annotated[Caller, Depends(_requiring(LEDGER_READ))]
AccountsWrite = Annotated[Caller, Depends(_requiring(ACCOUNTS_WRITE))]
Ops = Annotated[Caller, Depends(_requiring(OPS))]
