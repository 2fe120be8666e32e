"""API keys: created, found by the hash of their secret, listed and revoked."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from ledger_core.keys import ApiKey
from ledger_core.model import ClientId
from ledger_core.store.tables import api_keys


def _key_from_row(row: Any) -> ApiKey:
    return ApiKey(
        id=row.id,
        client=ClientId(row.client),
        ledger=row.ledger,
        scopes=frozenset(row.scopes),
        rate_per_s=None if row.rate_per_s is None else float(row.rate_per_s),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


class KeyStatements:
    connection: Connection

    def insert_key(self, key: ApiKey, secret_hash: str) -> ApiKey:
        row = self.connection.execute(
            insert(api_keys)
            .values(
                id=key.id,
                secret_hash=secret_hash,
                client=key.client,
                ledger=key.ledger,
                scopes=sorted(key.scopes),
                rate_per_s=key.rate_per_s,
            )
            .returning(*api_keys.c)
        ).one()
        return _key_from_row(row)

    def key_by_hash(self, secret_hash: str) -> ApiKey | None:
        row = self.connection.execute(
            select(api_keys).where(api_keys.c.secret_hash == secret_hash)
        ).one_or_none()
        return None if row is None else _key_from_row(row)

    def lock_client(self, client: str) -> None:
        """Serialize key creation for `client` until this transaction ends (SQLite's writers
        are serialized already), so two keys of one client cannot land in two ledgers."""
        if self.connection.dialect.name == "postgresql":
            self.connection.execute(
                select(func.pg_advisory_xact_lock(func.hashtextextended(client, 0)))
            )

    def client_ledgers(self, client: str) -> set[str]:
        """The ledgers the keys of `client` are bound to (one, once it has a key)."""
        rows = self.connection.execute(
            select(api_keys.c.ledger).where(api_keys.c.client == client).distinct()
        )
        return {row.ledger for row in rows}

    def list_keys(self) -> list[ApiKey]:
        rows = self.connection.execute(
            select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
        )
        return [_key_from_row(row) for row in rows]

    def revoke_key(self, key_id: str) -> ApiKey | None:
        """Stamp the key revoked (the first revocation's time stays); None if unknown."""
        row = self.connection.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id)
            .values(revoked_at=func.coalesce(api_keys.c.revoked_at, func.current_timestamp()))
            .returning(*api_keys.c)
        ).one_or_none()
        return None if row is None else _key_from_row(row)
