"""API keys as a use case (create with the secret shown once, find by secret, list,
revoke), and the audit trail of changes made with them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from ledger_core.errors import InvalidRequest, NotFound
from ledger_core.keys import (
    DEFAULT_LEDGER,
    OPEN_CLIENT,
    ApiKey,
    check_name,
    check_rate,
    hash_secret,
    new_key_id,
    new_secret,
    parse_scopes,
)
from ledger_core.model import ClientId, Page
from ledger_core.store.database import Database
from ledger_core.trail import KEY_CREATED, KEY_REVOKED, Actor, AuditEvent


class KeyNotFound(NotFound):
    code = "key_not_found"
    title = "Key not found"


class Keys:
    def __init__(self, database: Database) -> None:
        self.database = database

    def create(
        self,
        *,
        client: str,
        scopes: Iterable[str],
        actor: Actor,
        ledger: str = DEFAULT_LEDGER,
        rate_per_s: float | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key and its secret, which is not stored and cannot be shown again.

        A client belongs to one ledger: a key for a client whose keys name another ledger
        is refused."""
        key = ApiKey(
            id=new_key_id(),
            client=ClientId(check_name("client", client)),
            ledger=check_name("ledger", ledger),
            scopes=parse_scopes(scopes),
            rate_per_s=check_rate(rate_per_s),
            created_at=datetime.now(UTC),
        )
        secret = new_secret()
        with self.database.transaction() as repository:
            repository.lock_client(key.client)
            others = repository.client_ledgers(key.client) - {key.ledger}
            if key.client == OPEN_CLIENT:
                others |= {DEFAULT_LEDGER} - {key.ledger}
            if others:
                raise InvalidRequest(
                    f"client {key.client!r} belongs to ledger {sorted(others)[0]!r}; a client's"
                    " keys all name its one ledger"
                )
            created = repository.insert_key(key, hash_secret(secret))
            repository.insert_event(actor, KEY_CREATED, f"key:{key.id}", _key_facts(created))
            return created, secret

    def find(self, secret: str) -> ApiKey | None:
        """The live key whose secret this is, or None (unknown or revoked)."""
        with self.database.reads() as repository:
            key = repository.key_by_hash(hash_secret(secret))
        return key if key is not None and key.active else None

    def list_keys(self) -> list[ApiKey]:
        with self.database.reads() as repository:
            return repository.list_keys()

    def revoke(self, key_id: str, *, actor: Actor) -> ApiKey:
        with self.database.transaction() as repository:
            key = repository.revoke_key(key_id)
            if key is None:
                raise KeyNotFound(f"no key {key_id!r}")
            repository.insert_event(actor, KEY_REVOKED, f"key:{key.id}", _key_facts(key))
        return key


def _key_facts(key: ApiKey) -> dict[str, object]:
    return {"client": key.client, "ledger": key.ledger, "scopes": sorted(key.scopes)}


class AuditTrail:
    def __init__(self, database: Database) -> None:
        self.database = database

    def page(self, cursor: str | None, limit: int) -> Page[AuditEvent]:
        """Events in the order they were recorded, `limit` at a time from `cursor`."""
        with self.database.reads() as repository:
            items, next_cursor = repository.list_events(cursor, limit)
        return Page(items, next_cursor)
