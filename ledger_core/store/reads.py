"""Reads: posting requests by key with their transaction, transactions by id and by account.

Statements here only SELECT. Pages are ordered by insertion position, with opaque cursors
(`store.rows`). Transactions are read within one ledger (tenant): another ledger's are not
found; a posting request is read by its client, who belongs to one ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, select

from ledger_core.model import (
    AccountId,
    ClientId,
    Direction,
    Entry,
    PostingRecord,
    PostingStatus,
    RequestId,
    Transaction,
    TransactionId,
)
from ledger_core.store.rows import RECORD_COLUMNS, decode_cursor, encode_cursor, record_from_row
from ledger_core.store.tables import entries, posting_requests, transactions


class ReadStatements:
    connection: Connection

    def get_record(self, client_id: ClientId, idempotency_key: str) -> PostingRecord | None:
        row = self.connection.execute(
            select(*RECORD_COLUMNS).where(
                posting_requests.c.client_id == client_id,
                posting_requests.c.idempotency_key == idempotency_key,
            )
        ).one_or_none()
        if row is None:
            return None
        transaction = None
        if row.status == PostingStatus.POSTED.value:
            transaction = self._transaction_where(transactions.c.request_id == row.id)
        return record_from_row(row, transaction)

    def get_transaction(self, transaction_id: TransactionId, ledger: str) -> Transaction | None:
        return self._transaction_where(
            (transactions.c.id == transaction_id) & (transactions.c.ledger == ledger)
        )

    def _transaction_where(self, condition: Any) -> Transaction | None:
        row = self.connection.execute(select(transactions).where(condition)).one_or_none()
        if row is None:
            return None
        return self._transactions_from_rows([row])[0]

    def list_transactions(
        self, ledger: str, account_id: AccountId | None, cursor: str | None, limit: int
    ) -> tuple[list[Transaction], str | None]:
        query = select(transactions).where(
            transactions.c.ledger == ledger, transactions.c.position > decode_cursor(cursor)
        )
        if account_id is not None:
            query = query.where(
                transactions.c.position.in_(
                    select(entries.c.transaction_position).where(entries.c.account_id == account_id)
                )
            )
        rows = self.connection.execute(
            query.order_by(transactions.c.position).limit(limit + 1)
        ).all()
        page = rows[:limit]
        next_cursor = encode_cursor(page[-1].position) if len(rows) > limit else None
        return self._transactions_from_rows(page), next_cursor

    def _transactions_from_rows(self, rows: Sequence[Row[Any]]) -> list[Transaction]:
        if not rows:
            return []
        entry_rows = self.connection.execute(
            select(entries)
            .where(entries.c.transaction_position.in_([row.position for row in rows]))
            .order_by(entries.c.id)
        ).all()
        by_position: dict[int, list[Entry]] = {}
        for entry in entry_rows:
            by_position.setdefault(entry.transaction_position, []).append(
                Entry(AccountId(entry.account_id), Direction(entry.direction), entry.amount_minor)
            )
        return [
            Transaction(
                id=TransactionId(row.id),
                request_id=RequestId(row.request_id),
                idempotency_key=row.idempotency_key,
                currency=row.currency,
                entries=tuple(by_position.get(row.position, [])),
                reference=row.reference,
                description=row.description,
                metadata=dict(row.metadata or {}),
                posted_at=row.posted_at,
            )
            for row in rows
        ]
