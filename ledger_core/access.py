"""API keys as a use case: create (secret shown once), find by secret, list, revoke."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from ledger_core.errors import InvalidRequest, NotFound
from ledger_core.keys import (
    DEFAULT_LEDGER,
    ApiKey,
    check_name,
    check_rate,
    hash_secret,
    new_key_id,
    new_secret,
    parse_scopes,
)
from ledger_core.model import ClientId
from ledger_core.store.database import Database


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
            if others:
                raise InvalidRequest(
                    f"client {key.client!r} belongs to ledger {sorted(others)[0]!r}; a client's"
                    " keys all name its one ledger"
                )
            return repository.insert_key(key, hash_secret(secret)), secret

    def find(self, secret: str) -> ApiKey | None:
        """The live key whose secret this is, or None (unknown or revoked)."""
        with self.database.reads() as repository:
            key = repository.key_by_hash(hash_secret(secret))
        return key if key is not None and key.active else None

    def list_keys(self) -> list[ApiKey]:
        with self.database.reads() as repository:
            return repository.list_keys()

    def revoke(self, key_id: str) -> ApiKey:
        with self.database.transaction() as repository:
            key = repository.revoke_key(key_id)
        if key is None:
            raise KeyNotFound(f"no key {key_id!r}")
        return key
