"""The audit trail's values: who (a key, or an operator at the command line) did what to
which target, when. Recorded in the same transaction as the change it describes, so a
change without its event (or an event without its change) cannot be committed; the table
is append-only (a trigger refuses updates and deletes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

ACCOUNT_CREATED = "account.created"
ACCOUNT_UPDATED = "account.updated"
KEY_CREATED = "key.created"
KEY_REVOKED = "key.revoked"
POSTINGS_RETRIED = "postings.retried"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change: an API key (its id, client and ledger), or an operator at the
    command line (`key_id` None, the client names the operator's login)."""

    key_id: str | None
    client: str
    ledger: str


@dataclass(frozen=True, slots=True)
class AuditEvent:
    position: int
    key_id: str | None
    client: str
    ledger: str
    action: str
    target: str
    at: datetime
    details: dict[str, Any] = field(default_factory=dict)
