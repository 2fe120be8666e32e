"""Applying: one partition's batch locked, decided by the engine and written, in one transaction.

Lock order, so two appliers never deadlock: the lease row (share lock, the fence), then
the batch's intake rows by id, then the accounts by sorted id.

On PostgreSQL an applied batch costs three statements whatever its size: transactions
and their entries (one statement, through a CTE that builds them from the documents
stored at intake, locked by this batch, so only the request ids travel), account totals,
and request statuses (columns as array parameters that `unnest` turns back into rows;
integer ids as one array literal). JSON parameters for these statements only moved the
same cost from Python into PostgreSQL. SQLite, the embedded default, runs the same writes
as executemany statements from the same `BatchWrite`; `tests/integration` proves both
store the same rows for the same batch, and that the SQL decoding of a stored document
equals `rules.posting_from_document`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, func, insert, select, text, update

from ledger_core.errors import LeaseLost
from ledger_core.model import (
    AccountFlag,
    AccountId,
    AccountStatus,
    Balance,
    ClientId,
    Fence,
    Outcome,
    Posted,
    PostingStatus,
    QueuedPosting,
    RequestId,
)
from ledger_core.rules import posting_from_document
from ledger_core.store.rows import queued_in
from ledger_core.store.tables import (
    accounts,
    entries,
    partition_leases,
    posting_requests,
    transactions,
)

# The transactions and entries of the posted requests are built by PostgreSQL from the
# documents stored at intake (locked by this batch, so exactly what the engine decided
# on): only the request ids travel.
_INSERT_TRANSACTIONS_AND_ENTRIES = text(
    """
    WITH posted AS (
        SELECT r.id, r.document, v.n
          FROM unnest(CAST(:request_ids AS bigint[])) WITH ORDINALITY AS v(id, n)
          JOIN posting_requests AS r ON r.id = v.id
    ),
    new_transactions AS (
        INSERT INTO transactions
            (request_id, idempotency_key, currency, reference, description, metadata)
        SELECT p.id, p.document->>'idempotency_key', p.document->>'currency',
               p.document->>'reference', p.document->>'description',
               coalesce(p.document->'metadata', '{}'::jsonb)
          FROM posted AS p
         ORDER BY p.n
        RETURNING position, request_id, currency, id, posted_at
    ),
    new_entries AS (
        INSERT INTO entries (transaction_position, account_id, currency, direction, amount_minor)
        SELECT n.position, (e.leg->>0)::uuid, n.currency, e.leg->>1, (e.leg->>2)::bigint
          FROM new_transactions AS n
          JOIN posted AS p ON p.id = n.request_id,
               jsonb_array_elements(p.document->'entries') WITH ORDINALITY AS e(leg, n)
         ORDER BY n.position, e.n
    )
    SELECT request_id, id::text, posted_at FROM new_transactions
    """
)

_UPDATE_TOTALS = text(
    """
    UPDATE accounts AS a
       SET debits_posted = v.debits, credits_posted = v.credits
      FROM unnest(CAST(:ids AS uuid[]), CAST(:debits AS bigint[]), CAST(:credits AS bigint[]))
           AS v(id, debits, credits)
     WHERE a.id = v.id
    """
)

_FINISH_REQUESTS = text(
    """
    UPDATE posting_requests AS r
       SET status = v.status, error_code = v.code, error_detail = v.detail,
           finished_at = now()
      FROM (SELECT id, 'posted' AS status, NULL AS code, NULL AS detail
              FROM unnest(CAST(:posted AS bigint[])) AS id
            UNION ALL
            SELECT id, 'rejected', code, detail
              FROM unnest(CAST(:refused AS bigint[]), CAST(:codes AS text[]),
                          CAST(:details AS text[])) AS f(id, code, detail)
           ) AS v
     WHERE r.id = v.id AND r.status = 'queued'
    """
)


@dataclass(frozen=True, slots=True)
class BatchWrite:
    """The one description of what an applied batch writes, built from the engine's output:
    the posted requests in acceptance order, the changed account totals, and every
    request's outcome. Each dialect's statements are driven by it alone."""

    posted: Sequence[QueuedPosting]
    balances: Sequence[Balance]
    outcomes: Sequence[Outcome]


class ApplyStatements:
    connection: Connection

    def check_fence(self, fence: Fence) -> None:
        """Raise `LeaseLost` unless `fence` still holds; share-lock the lease until commit.

        A claim must update the lease row, so it cannot commit while this batch is open,
        and once it has, no batch under the old token gets past this check.
        """
        held = self.connection.execute(
            select(partition_leases.c.token)
            .where(
                partition_leases.c.partition == fence.partition,
                partition_leases.c.owner == fence.owner,
                partition_leases.c.token == fence.token,
            )
            .with_for_update(read=True)
        ).scalar_one_or_none()
        if held is None:
            raise LeaseLost(
                f"{fence.owner} no longer holds partition {fence.partition}"
                f" under token {fence.token}"
            )

    def lock_queued(self, partition: int, limit: int) -> list[QueuedPosting]:
        """Lock the oldest queued requests of a partition, in acceptance order."""
        rows = self.connection.execute(
            select(posting_requests.c.id, posting_requests.c.client_id, posting_requests.c.document)
            .where(queued_in(partition))
            .order_by(posting_requests.c.id)
            .limit(limit)
            .with_for_update()
        ).all()
        return [
            QueuedPosting(
                RequestId(row.id), ClientId(row.client_id), posting_from_document(row.document)
            )
            for row in rows
        ]

    def lock_oldest_queued_id(self, partition: int) -> RequestId | None:
        """Lock the oldest queued request of a partition without reading its document."""
        request_id = self.connection.execute(
            select(posting_requests.c.id)
            .where(queued_in(partition))
            .order_by(posting_requests.c.id)
            .limit(1)
            .with_for_update()
        ).scalar_one_or_none()
        return None if request_id is None else RequestId(request_id)

    def lock_balances(self, account_ids: set[AccountId]) -> dict[AccountId, Balance]:
        """Lock the named accounts in sorted id order and return their balances."""
        rows = self.connection.execute(
            select(
                accounts.c.id,
                accounts.c.currency,
                accounts.c.status,
                accounts.c.flags,
                accounts.c.debits_posted,
                accounts.c.credits_posted,
            )
            .where(accounts.c.id.in_(sorted(account_ids)))
            .order_by(accounts.c.id)
            .with_for_update()
        ).all()
        return {
            AccountId(row.id): Balance(
                account_id=AccountId(row.id),
                currency=row.currency,
                status=AccountStatus(row.status),
                flags=AccountFlag(row.flags),
                debits_posted=row.debits_posted,
                credits_posted=row.credits_posted,
            )
            for row in rows
        }

    def write_batch(self, batch: BatchWrite) -> Posted:
        """Store what one applied batch decided: transactions, entries, totals, statuses.

        Returns each posted request's transaction id and the posting time, on both
        dialects, so waiters are answered from the wake-up alone."""
        if self.connection.dialect.name == "postgresql":
            posted = _insert_transactions_postgresql(self.connection, batch.posted)
            if batch.balances:
                _update_totals_postgresql(self.connection, batch.balances)
            _finish_requests_postgresql(self.connection, batch.outcomes)
            return posted
        posted = self._insert_transactions_sqlite(batch.posted)
        if batch.balances:
            self.connection.execute(
                update(accounts)
                .where(accounts.c.id == bindparam("b_id"))
                .values(debits_posted=bindparam("b_debits"), credits_posted=bindparam("b_credits")),
                [
                    {
                        "b_id": b.account_id,
                        "b_debits": b.debits_posted,
                        "b_credits": b.credits_posted,
                    }
                    for b in batch.balances
                ],
            )
        self.connection.execute(
            update(posting_requests)
            .where(
                posting_requests.c.id == bindparam("b_id"),
                posting_requests.c.status == PostingStatus.QUEUED.value,
            )
            .values(
                status=bindparam("b_status"),
                error_code=bindparam("b_code"),
                error_detail=bindparam("b_detail"),
                finished_at=func.now(),
            ),
            [
                {
                    "b_id": o.request_id,
                    "b_status": (
                        PostingStatus.POSTED if o.posted else PostingStatus.REJECTED
                    ).value,
                    "b_code": o.code,
                    "b_detail": o.detail,
                }
                for o in batch.outcomes
            ],
        )
        return posted

    def _insert_transactions_sqlite(self, posted: Sequence[QueuedPosting]) -> Posted:
        """The embedded default's transactions and entries, from the same postings the
        PostgreSQL statement decodes from their stored documents."""
        if not posted:
            return Posted()
        inserted = self.connection.execute(
            insert(transactions).returning(
                transactions.c.position,
                transactions.c.id,
                transactions.c.posted_at,
                sort_by_parameter_order=True,
            ),
            [
                {
                    "id": uuid.uuid4(),
                    "request_id": queued.request_id,
                    "idempotency_key": queued.posting.idempotency_key,
                    "currency": queued.posting.currency,
                    "reference": queued.posting.reference,
                    "description": queued.posting.description,
                    "metadata": queued.posting.metadata,
                }
                for queued in posted
            ],
        ).all()
        self.connection.execute(
            insert(entries),
            [
                {
                    "transaction_position": row.position,
                    "account_id": entry.account_id,
                    "currency": queued.posting.currency,
                    "direction": entry.direction.value,
                    "amount_minor": entry.amount_minor,
                }
                for row, queued in zip(inserted, posted, strict=True)
                for entry in queued.posting.entries
            ],
        )
        return Posted(
            {queued.request_id: str(row.id) for row, queued in zip(inserted, posted, strict=True)},
            inserted[0].posted_at,
        )

    def mark_failed(self, request_id: RequestId, code: str, detail: str) -> None:
        self.connection.execute(
            update(posting_requests)
            .where(
                posting_requests.c.id == request_id,
                posting_requests.c.status == PostingStatus.QUEUED.value,
            )
            .values(
                status=PostingStatus.FAILED.value,
                error_code=code,
                error_detail=detail,
                finished_at=func.now(),
            )
        )


def _insert_transactions_postgresql(
    connection: Connection, posted: Sequence[QueuedPosting]
) -> Posted:
    """Post `posted` (locked queued requests), in order, from their stored documents."""
    if not posted:
        return Posted()
    rows = connection.execute(
        _INSERT_TRANSACTIONS_AND_ENTRIES,
        {"request_ids": int_array([queued.request_id for queued in posted])},
    ).all()
    return Posted({RequestId(row[0]): row[1] for row in rows}, rows[0][2] if rows else None)


def _update_totals_postgresql(connection: Connection, balances: Sequence[Balance]) -> None:
    connection.execute(
        _UPDATE_TOTALS,
        {
            "ids": [b.account_id for b in balances],
            "debits": [b.debits_posted for b in balances],
            "credits": [b.credits_posted for b in balances],
        },
    )


def _finish_requests_postgresql(connection: Connection, outcomes: Sequence[Outcome]) -> None:
    refused = [o for o in outcomes if not o.posted]
    connection.execute(
        _FINISH_REQUESTS,
        {
            "posted": int_array([o.request_id for o in outcomes if o.posted]),
            "refused": int_array([o.request_id for o in refused]),
            "codes": [o.code for o in refused],
            "details": [o.detail for o in refused],
        },
    )


def int_array(values: Sequence[int]) -> str:
    """A PostgreSQL array literal of integers, cast to bigint[] by the statement.

    Built with one `join` instead of the driver's per-element dumping in Python, which
    was the largest single cost of the worker's statements for batches of hundreds.
    """
    return "{" + ",".join(map(str, values)) + "}"
