"""The PostgreSQL ceiling: the ledger's own writes, set-based, from one process, nothing else.

It runs on the real schema (`ledgerflow migrate`: the balance trigger deferred to commit,
the foreign keys, the checks and indexes) in a scratch database of its own, which it
creates when absent and empties at the start of each benchmark. Per batch of up to 1,000
postings, in one transaction, what an applied batch writes on the ledger's side:

1. lock the accounts of the batch in sorted id order (`SELECT ... FOR UPDATE`);
2. insert the transactions and their two entries each (one statement);
3. set the accounts' new totals (one statement over arrays).

Left out, as not the ledger's writes: the intake row of each posting and its status
update (the queue's), and the partition lease check. `transactions.request_id` must name
an intake row, so those rows are inserted before the timed part, already final.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from benchmarks.e2e import AMOUNT, CURRENCY, Accounts, BenchmarkError
from ledger_core.settings import Settings
from ledgerflow.migrate import upgrade_to_head

CLIENT_PREFIX = "ceiling-"
AMOUNT_MINOR = int(Decimal(AMOUNT) * 100)  # USD has two decimals
CONNECT_TIMEOUT_S = 5

_LOCK_ACCOUNTS = """
    SELECT id::text, currency, status, flags, debits_posted, credits_posted
      FROM accounts
     WHERE id = ANY(CAST(%(ids)s AS uuid[]))
     ORDER BY id
       FOR UPDATE
"""

_INSERT_TRANSACTIONS_AND_ENTRIES = """
    WITH batch AS (
        SELECT *
          FROM unnest(CAST(%(request_ids)s AS bigint[]), CAST(%(keys)s AS text[]),
                      CAST(%(debits)s AS uuid[]), CAST(%(credits)s AS uuid[]))
               WITH ORDINALITY AS b(request_id, idempotency_key, debit, credit, n)
    ),
    new_transactions AS (
        INSERT INTO transactions (request_id, idempotency_key, currency, metadata)
        SELECT b.request_id, b.idempotency_key, %(currency)s, '{}'::jsonb
          FROM batch AS b
         ORDER BY b.n
        RETURNING position, request_id, id, posted_at
    ),
    new_entries AS (
        INSERT INTO entries (transaction_position, account_id, currency, direction, amount_minor)
        SELECT t.position, leg.account_id, %(currency)s, leg.direction, %(amount)s
          FROM new_transactions AS t
          JOIN batch AS b ON b.request_id = t.request_id,
               LATERAL (VALUES (b.debit, 'debit', 1), (b.credit, 'credit', 2))
               AS leg(account_id, direction, k)
         ORDER BY t.position, leg.k
    )
    SELECT request_id, id::text, posted_at FROM new_transactions
"""

_UPDATE_TOTALS = """
    UPDATE accounts AS a
       SET debits_posted = v.debits, credits_posted = v.credits
      FROM unnest(CAST(%(ids)s AS uuid[]), CAST(%(debits)s AS bigint[]),
                  CAST(%(credits)s AS bigint[])) AS v(id, debits, credits)
     WHERE a.id = v.id
"""


@dataclass(frozen=True, slots=True)
class CeilingPosting:
    """One posting of the ceiling: its intake row, its key and its two accounts."""

    request_id: int
    idempotency_key: str
    debit: str
    credit: str


def scratch_url(database_url: str | None) -> str | None:
    """The default scratch database: the service's database name with `_ceiling`."""
    if not database_url:
        return None
    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    return urlunsplit(parts._replace(path=f"/{name}_ceiling")) if name else None


def prepare_scratch(database_url: str) -> None:
    """Create the scratch database if absent, bring it to head and empty it.

    BenchmarkError if it looks like a ledger in use (a worker ran on it, or it holds
    postings of other clients): it is never emptied then.
    """
    name = psycopg.conninfo.conninfo_to_dict(database_url).get("dbname")
    if not name:
        raise BenchmarkError(f"{database_url!r} names no database")
    try:
        with psycopg.connect(
            database_url, dbname="postgres", autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
        ) as admin:
            exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if exists.fetchone() is None:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(str(name))))
        upgrade_to_head(Settings(database_url=database_url).sqlalchemy_url())
        with psycopg.connect(database_url, connect_timeout=CONNECT_TIMEOUT_S) as connection:
            in_use = connection.execute(
                "SELECT EXISTS (SELECT FROM workers) OR EXISTS "
                "(SELECT FROM posting_requests WHERE client_id NOT LIKE %s)",
                [CLIENT_PREFIX + "%"],
            ).fetchone()
            if in_use is None or in_use[0]:
                raise BenchmarkError(
                    f"{name} holds a worker or other clients' postings: not a scratch database"
                )
            connection.execute("TRUNCATE entries, transactions, posting_requests, accounts")
    except psycopg.Error as error:
        raise BenchmarkError(f"ceiling database {name}: {error}") from error


Connection = psycopg.Connection[TupleRow]


def connect(database_url: str) -> Connection:
    return psycopg.connect(database_url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)


def open_scratch_accounts(connection: Connection, count: int) -> Accounts:
    """A settlement (liability) account and `count` wallets (assets), in one statement."""
    started = time.perf_counter()
    rows = connection.execute(
        """
        INSERT INTO accounts (id, name, account_type, currency)
        SELECT gen_random_uuid(), 'ceiling ' || n, CASE WHEN n = 0 THEN 'liability'
               ELSE 'asset' END, %(currency)s
          FROM generate_series(0, %(count)s) AS n
        RETURNING id::text, account_type
        """,
        {"currency": CURRENCY, "count": count},
    ).fetchall()
    settlement = next(str(row[0]) for row in rows if row[1] == "liability")
    wallets = [str(row[0]) for row in rows if row[1] == "asset"]
    return Accounts(wallets, settlement, Counter(), time.perf_counter() - started)


def intake_rows(connection: Connection, pairs: Sequence[tuple[str, str]]) -> list[CeilingPosting]:
    """One final intake row per posting, which its transaction will name (not timed)."""
    client_id = f"{CLIENT_PREFIX}{uuid.uuid4().hex[:12]}"
    keys = [uuid.uuid4().hex for _ in pairs]
    rows = connection.execute(
        """
        INSERT INTO posting_requests
            (client_id, idempotency_key, body_hash, partition, document, status, finished_at)
        SELECT %(client_id)s, key, 'ceiling', 0, '{}'::jsonb, 'posted', now()
          FROM unnest(CAST(%(keys)s AS text[])) AS key
        RETURNING idempotency_key, id
        """,
        {"client_id": client_id, "keys": keys},
    ).fetchall()
    ids = {str(key): int(request_id) for key, request_id in rows}
    return [
        CeilingPosting(ids[key], key, debit, credit)
        for key, (debit, credit) in zip(keys, pairs, strict=True)
    ]


def write_batch(connection: Connection, postings: Sequence[CeilingPosting]) -> None:
    """Post one batch as the ledger does: lock, insert transactions and entries, totals."""
    with connection.transaction():
        ids = sorted({p.debit for p in postings} | {p.credit for p in postings})
        locked = connection.execute(_LOCK_ACCOUNTS, {"ids": ids}).fetchall()
        totals = {str(row[0]): [int(row[4]), int(row[5])] for row in locked}
        for posting in postings:
            totals[posting.debit][0] += AMOUNT_MINOR
            totals[posting.credit][1] += AMOUNT_MINOR
        connection.execute(
            _INSERT_TRANSACTIONS_AND_ENTRIES,
            {
                "request_ids": [p.request_id for p in postings],
                "keys": [p.idempotency_key for p in postings],
                "debits": [p.debit for p in postings],
                "credits": [p.credit for p in postings],
                "currency": CURRENCY,
                "amount": AMOUNT_MINOR,
            },
        ).fetchall()
        connection.execute(
            _UPDATE_TOTALS,
            {
                "ids": list(totals),
                "debits": [debit for debit, _ in totals.values()],
                "credits": [credit for _, credit in totals.values()],
            },
        )
