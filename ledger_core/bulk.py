"""Set-based writes on PostgreSQL: a few statements per batch, not per row.

Part of the repository (it speaks SQL, nothing else does besides `repository.py`,
`tables.py`, `ownership.py` and the read-only `audit.py`). An applied batch of 500 postings
costs three statements whatever its size: transactions and their entries (one statement,
through a CTE), account totals, and request statuses; each column travels as one array
parameter that `unnest` turns back into rows. Intake is one statement per group commit.

A large group commit (batch requests) travels instead as one JSON text, each request's
canonical document spliced in as it is, unpacked by `jsonb_array_elements WITH
ORDINALITY`: the driver dumps array elements one by one in Python, and the documents were
parsed twice. Measured on this project's machine, 1,000-row commits went from about 6,200
to 8,400-9,200 requests/s in one process; but the JSON statement costs more per call, and
single requests (commits of a few rows) were about 15% slower end to end with it, so small
commits keep the arrays. For the apply statements JSON only moved the same cost from
Python into PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, text

from ledger_core.model import Balance, Outcome, PostingStatus, QueuedPosting

if TYPE_CHECKING:
    from ledger_core.repository import IntakeRow

# Group commits this large travel as one JSON text; smaller ones as arrays (see above).
JSON_INTAKE_ROWS_MIN = 64

_INSERT_REQUESTS_ARRAYS = text(
    """
    INSERT INTO posting_requests (client_id, idempotency_key, body_hash, partition, document)
    SELECT r.client_id, r.idempotency_key, r.body_hash, r.partition, r.document::jsonb
      FROM unnest(
            CAST(:clients AS text[]), CAST(:keys AS text[]), CAST(:hashes AS text[]),
            CAST(:partitions AS smallint[]), CAST(:documents AS text[])
           ) WITH ORDINALITY AS r(client_id, idempotency_key, body_hash, partition, document, n)
     ORDER BY r.n
    ON CONFLICT (client_id, idempotency_key) DO NOTHING
    RETURNING id, client_id, idempotency_key, body_hash, partition, status, accepted_at,
              error_code, error_detail
    """
)

_INSERT_REQUESTS_JSON = text(
    """
    INSERT INTO posting_requests (client_id, idempotency_key, body_hash, partition, document)
    SELECT r.c, r.k, r.h, r.p, r.d
      FROM jsonb_array_elements(CAST(:rows AS jsonb)) WITH ORDINALITY AS a(row, n),
           jsonb_to_record(a.row) AS r(c text, k text, h text, p smallint, d jsonb)
     ORDER BY a.n
    ON CONFLICT (client_id, idempotency_key) DO NOTHING
    RETURNING id, client_id, idempotency_key, body_hash, partition, status, accepted_at,
              error_code, error_detail
    """
)

_INSERT_TRANSACTIONS_AND_ENTRIES = text(
    """
    WITH new_transactions AS (
        INSERT INTO transactions
            (request_id, idempotency_key, currency, reference, description, metadata)
        SELECT t.request_id, t.idempotency_key, t.currency, t.reference, t.description,
               t.metadata::jsonb
          FROM unnest(
                CAST(:request_ids AS bigint[]), CAST(:keys AS text[]),
                CAST(:currencies AS text[]), CAST(:refs AS text[]), CAST(:descriptions AS text[]),
                CAST(:metadata AS text[])
               ) AS t(request_id, idempotency_key, currency, reference, description, metadata)
        RETURNING position, request_id
    )
    INSERT INTO entries (transaction_position, account_id, currency, direction, amount_minor)
    SELECT n.position, e.account_id, e.currency, e.direction, e.amount_minor
      FROM unnest(
            CAST(:e_request_ids AS bigint[]), CAST(:e_accounts AS uuid[]),
            CAST(:e_currencies AS text[]), CAST(:e_directions AS text[]),
            CAST(:e_amounts AS bigint[])
           ) WITH ORDINALITY AS e(request_id, account_id, currency, direction, amount_minor, n)
      JOIN new_transactions AS n USING (request_id)
     ORDER BY e.n
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
      FROM unnest(CAST(:ids AS bigint[]), CAST(:statuses AS text[]), CAST(:codes AS text[]),
                  CAST(:details AS text[])) AS v(id, status, code, detail)
     WHERE r.id = v.id AND r.status = 'queued'
    """
)


def insert_requests(connection: Connection, rows: Sequence[IntakeRow]) -> list[Any]:
    """Insert new requests in acceptance order; return the rows that were created."""
    if len(rows) < JSON_INTAKE_ROWS_MIN:
        parameters: dict[str, Any] = {
            "clients": [row.client_id for row in rows],
            "keys": [row.idempotency_key for row in rows],
            "hashes": [row.body_hash for row in rows],
            "partitions": [row.partition for row in rows],
            "documents": [row.document for row in rows],
        }
        return list(connection.execute(_INSERT_REQUESTS_ARRAYS, parameters).all())
    # Each document is already canonical JSON text: it is spliced in, not encoded again.
    payload = (
        "["
        + ",".join(
            f'{{"c":{_dumps(row.client_id)},"k":{_dumps(row.idempotency_key)},'
            f'"h":"{row.body_hash}","p":{row.partition},"d":{row.document}}}'
            for row in rows
        )
        + "]"
    )
    return list(connection.execute(_INSERT_REQUESTS_JSON, {"rows": payload}).all())


def insert_transactions(connection: Connection, accepted: Sequence[QueuedPosting]) -> None:
    postings = [queued.posting for queued in accepted]
    legs = [(queued, entry) for queued in accepted for entry in queued.posting.entries]
    connection.execute(
        _INSERT_TRANSACTIONS_AND_ENTRIES,
        {
            "request_ids": [queued.request_id for queued in accepted],
            "keys": [p.idempotency_key for p in postings],
            "currencies": [p.currency for p in postings],
            "refs": [p.reference for p in postings],
            "descriptions": [p.description for p in postings],
            "metadata": [json.dumps(p.metadata) if p.metadata else "{}" for p in postings],
            "e_request_ids": [queued.request_id for queued, _ in legs],
            "e_accounts": [entry.account_id for _, entry in legs],
            "e_currencies": [queued.posting.currency for queued, _ in legs],
            "e_directions": [entry.direction.value for _, entry in legs],
            "e_amounts": [entry.amount_minor for _, entry in legs],
        },
    )


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
    connection.execute(
        _FINISH_REQUESTS,
        {
            "ids": [o.request_id for o in outcomes],
            "statuses": [
                (PostingStatus.POSTED if o.posted else PostingStatus.REJECTED).value
                for o in outcomes
            ],
            "codes": [o.code for o in outcomes],
            "details": [o.detail for o in outcomes],
        },
    )


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))
