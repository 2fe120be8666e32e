"""The set-based PostgreSQL statements of an applied batch (see `store.apply`).

Three statements per batch whatever its size: transactions and their entries (one
statement, through a CTE that builds them from the documents stored at intake, locked by
the batch, so only the request ids travel), account totals, and request statuses (columns
as array parameters that `unnest` turns back into rows; integer ids as one array literal).
JSON parameters for these statements only moved the same cost from Python into
PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, text

from ledger_core.model import Balance, Fence, Outcome, Posted, QueuedPosting, RequestId

# The transactions and entries of the posted requests are built by PostgreSQL from the
# documents stored at intake (locked by this batch, so exactly what the engine decided
# on): only the request ids travel.
# The oldest `limit` queued requests of a set of partitions, locked: per partition one
# probe of the partial queued index (LATERAL), then the oldest `limit` of those.
_OLDEST_QUEUED = """
    SELECT q.id
      FROM unnest(CAST(:partitions AS smallint[])) AS w(partition)
     CROSS JOIN LATERAL (
           SELECT id FROM posting_requests
            WHERE partition = w.partition AND status = 'queued'
            ORDER BY id LIMIT :limit
           ) AS q
     ORDER BY q.id LIMIT :limit
"""
_LOCK_QUEUED = text(
    "SELECT id, client_id, partition, document, ledger FROM posting_requests"
    f" WHERE id IN ({_OLDEST_QUEUED}) ORDER BY id FOR UPDATE"
)
_LOCK_OLDEST_QUEUED_ID = text(
    f"SELECT id FROM posting_requests WHERE id IN ({_OLDEST_QUEUED}) ORDER BY id LIMIT 1 FOR UPDATE"
)

# The fences of a batch: which of its (partition, token) claims still name their owner,
# share-locked until commit.
_HELD_LEASES = text(
    """
    SELECT l.partition
      FROM partition_leases AS l
      JOIN unnest(CAST(:partitions AS smallint[]), CAST(:tokens AS bigint[]))
           AS f(partition, token) ON l.partition = f.partition AND l.token = f.token
     WHERE l.owner = ANY(CAST(:owners AS text[]))
       FOR SHARE OF l
    """
)

_INSERT_TRANSACTIONS_AND_ENTRIES = text(
    """
    WITH posted AS (
        SELECT r.id, r.document, r.ledger, v.n
          FROM unnest(CAST(:request_ids AS bigint[])) WITH ORDINALITY AS v(id, n)
          JOIN posting_requests AS r ON r.id = v.id
    ),
    new_transactions AS (
        INSERT INTO transactions
            (request_id, idempotency_key, currency, reference, description, metadata, ledger)
        SELECT p.id, p.document->>'idempotency_key', p.document->>'currency',
               p.document->>'reference', p.document->>'description',
               coalesce(p.document->'metadata', '{}'::jsonb), p.ledger
          FROM posted AS p
         ORDER BY p.n
        RETURNING position, request_id, currency, ledger, id, posted_at
    ),
    new_entries AS (
        INSERT INTO entries
            (transaction_position, account_id, currency, direction, amount_minor, ledger)
        SELECT n.position, (e.leg->>0)::uuid, n.currency, e.leg->>1, (e.leg->>2)::bigint,
               n.ledger
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
      FROM unnest(CAST(:ids AS uuid[]), CAST(:debits AS numeric[]), CAST(:credits AS numeric[]))
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


def held_leases(connection: Connection, owners: Sequence[str], fences: Sequence[Fence]) -> set[int]:
    rows = connection.execute(
        _HELD_LEASES,
        {
            "partitions": [fence.partition for fence in fences],
            "tokens": [fence.token for fence in fences],
            "owners": list(owners),
        },
    ).scalars()
    return {int(partition) for partition in rows}


def lock_queued(connection: Connection, partitions: Sequence[int], limit: int) -> list[Any]:
    return list(
        connection.execute(
            _LOCK_QUEUED, {"partitions": sorted(set(partitions)), "limit": limit}
        ).all()
    )


def lock_oldest_queued_id(connection: Connection, partitions: Sequence[int]) -> int | None:
    found = connection.execute(
        _LOCK_OLDEST_QUEUED_ID, {"partitions": sorted(set(partitions)), "limit": 1}
    ).scalar_one_or_none()
    return None if found is None else int(found)


def insert_transactions(connection: Connection, posted: Sequence[QueuedPosting]) -> Posted:
    """Post `posted` (locked queued requests), in order, from their stored documents."""
    if not posted:
        return Posted()
    rows = connection.execute(
        _INSERT_TRANSACTIONS_AND_ENTRIES,
        {"request_ids": int_array([queued.request_id for queued in posted])},
    ).all()
    return Posted({RequestId(row[0]): row[1] for row in rows}, rows[0][2] if rows else None)


def update_totals(connection: Connection, balances: Sequence[Balance]) -> None:
    connection.execute(
        _UPDATE_TOTALS,
        {
            "ids": [b.account_id for b in balances],
            "debits": [b.debits_posted for b in balances],
            "credits": [b.credits_posted for b in balances],
        },
    )


def finish_requests(connection: Connection, outcomes: Sequence[Outcome]) -> None:
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
