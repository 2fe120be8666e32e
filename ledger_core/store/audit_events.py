"""The audit trail: events appended in the transaction of the change, read by position."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select

from ledger_core.store.rows import decode_cursor, encode_cursor
from ledger_core.store.tables import audit_events
from ledger_core.trail import Actor, AuditEvent


class AuditEventStatements:
    connection: Connection

    def insert_event(
        self, actor: Actor, action: str, target: str, details: dict[str, Any] | None = None
    ) -> None:
        self.connection.execute(
            insert(audit_events).values(
                key_id=actor.key_id,
                client=actor.client,
                ledger=actor.ledger,
                action=action,
                target=target,
                details=details or {},
            )
        )

    def list_events(self, cursor: str | None, limit: int) -> tuple[list[AuditEvent], str | None]:
        rows = self.connection.execute(
            select(audit_events)
            .where(audit_events.c.position > decode_cursor(cursor))
            .order_by(audit_events.c.position)
            .limit(limit + 1)
        ).all()
        page = rows[:limit]
        next_cursor = encode_cursor(page[-1].position) if len(rows) > limit else None
        return [
            AuditEvent(
                position=row.position,
                key_id=row.key_id,
                client=row.client,
                ledger=row.ledger,
                action=row.action,
                target=row.target,
                at=row.at,
                details=dict(row.details or {}),
            )
            for row in page
        ], next_cursor
