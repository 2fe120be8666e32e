"""API keys: who calls, for which client and ledger, allowed to do what.

A key is a random secret shown once; the record keeps only its SHA-256. A secret carries
256 random bits, so a plain fast hash is enough to make the stored form useless to a
reader of the database (no password stretching needed, as for GitHub's and Stripe's
tokens), and lookup is by that hash. A key belongs to one client (the idempotency scope
and owner of its postings) and one ledger (the tenant whose accounts and transactions it
sees); its scopes say which endpoints it may call.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from ledger_core.errors import InvalidRequest
from ledger_core.model import ClientId

POSTINGS_WRITE = "postings:write"
POSTINGS_READ = "postings:read"
LEDGER_READ = "ledger:read"
ACCOUNTS_WRITE = "accounts:write"
OPS = "ops"
SCOPES: tuple[str, ...] = (POSTINGS_WRITE, POSTINGS_READ, LEDGER_READ, ACCOUNTS_WRITE, OPS)

DEFAULT_LEDGER = "default"
# The client every request acts as while authentication is off (LEDGERFLOW_AUTH=off). Its
# postings are in the default ledger, so a key for it can only name that ledger.
OPEN_CLIENT = "default"
SECRET_PREFIX = "lf_"
NAME_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    client: ClientId
    ledger: str
    scopes: frozenset[str]
    rate_per_s: float | None
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def new_key_id() -> str:
    return "key_" + secrets.token_hex(8)


def new_secret() -> str:
    """A fresh secret: the prefix (so scanners can spot leaked ones) and 256 random bits."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def check_name(kind: str, name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise InvalidRequest(f"a {kind} name is 1-128 letters, digits or . _ : -")
    return name


def parse_scopes(scopes: Iterable[str]) -> frozenset[str]:
    """The scopes named, each one of `SCOPES`; at least one."""
    chosen = frozenset(s.strip() for s in scopes if s.strip())
    unknown = sorted(chosen - set(SCOPES))
    if unknown:
        raise InvalidRequest(f"unknown scopes {unknown}; the scopes are {list(SCOPES)}")
    if not chosen:
        raise InvalidRequest(f"name at least one scope of {list(SCOPES)}")
    return chosen


def check_rate(rate_per_s: float | None) -> float | None:
    if rate_per_s is not None and not 0 < rate_per_s <= 1_000_000:
        raise InvalidRequest("a key's rate is more than 0 and at most 1,000,000 requests/s")
    return rate_per_s
