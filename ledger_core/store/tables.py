"""The schema as SQLAlchemy Core tables: the record of the ledger.

The database holds every invariant a second time, apart from the pure rules:
amounts are positive, posted totals never negative and at most 38 digits (`Total`),
account flags hold on every row,
(client, idempotency key) is unique, one transaction per accepted request, an entry's
currency is its account's currency, and an entry's account is in its transaction's ledger
(two composite foreign keys through `entries.ledger`). On PostgreSQL the migration adds a deferred
constraint trigger that each transaction's entries sum to zero and triggers that forbid
updating or deleting entries and transactions.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator, TypeEngine

from ledger_core.keys import DEFAULT_LEDGER
from ledger_core.money import TOTAL_DIGITS


class UtcDateTime(TypeDecorator[datetime]):
    """A moment with its UTC offset on every dialect. PostgreSQL's timestamptz has one;
    SQLite stores text without it, so a value read back there is marked as the UTC it is."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Total(TypeDecorator[int]):
    """An account's posted total: an integer from 0 to `money.TOTAL_MAX` (38 digits).

    PostgreSQL stores NUMERIC(38, 0). SQLite's integers stop at 2**63 - 1, and its NUMERIC
    affinity would turn larger ones into doubles, so there a total is text of exactly 38
    digits, zero-padded (`sqlite_total`): text of one width sorts as its numbers do, so the
    flag CHECKs and comparisons in SQL hold unchanged. Read back as `int` on both.
    """

    impl = Numeric(TOTAL_DIGITS, 0)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(TOTAL_DIGITS))
        return dialect.type_descriptor(Numeric(TOTAL_DIGITS, 0))

    def process_bind_param(self, value: int | None, dialect: Dialect) -> int | str | None:
        if value is None or dialect.name != "sqlite":
            return value
        return sqlite_total(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        return None if value is None else int(value)


def sqlite_total(value: int) -> str:
    """A total as SQLite stores it. A negative or wider value comes out in another shape,
    which the table's `totals_digits` CHECK refuses."""
    return f"{value:0{TOTAL_DIGITS}d}"


class TotalSum(FunctionElement[int]):
    """sum() of BIGINT amounts as a `Total`, exact however many rows it sums.

    PostgreSQL's sum of BIGINT is NUMERIC already. SQLite's stops with "integer overflow"
    past 2**63 - 1, so there it is `ledgerflow_total_sum`, the aggregate `SqliteTotalSum`
    that `store.database` registers on every SQLite connection.
    """

    type = Total()
    name = "total_sum"
    inherit_cache = True


@compiles(TotalSum)
def _total_sum(element: TotalSum, compiler: SQLCompiler, **kw: Any) -> str:
    return f"sum({compiler.process(element.clauses, **kw)})"


@compiles(TotalSum, "sqlite")
def _total_sum_sqlite(element: TotalSum, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{SqliteTotalSum.name}({compiler.process(element.clauses, **kw)})"


class SqliteTotalSum:
    """The SQLite aggregate behind `TotalSum`: Python integers do not overflow, and the
    result is a total as SQLite stores it, so SQL compares it with stored totals as is."""

    name = "ledgerflow_total_sum"

    def __init__(self) -> None:
        self.total = 0

    def step(self, value: int | None) -> None:
        if value is not None:
            self.total += value

    def finalize(self) -> str:
        return sqlite_total(self.total)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# BIGINT keys on PostgreSQL; SQLite only auto-increments an INTEGER PRIMARY KEY.
Serial = BigInteger().with_variant(Integer(), "sqlite")
Document = JSON().with_variant(JSONB(), "postgresql")


def _ledger() -> Column[str]:
    """The ledger (tenant) a row belongs to, as API keys name it; rows written before
    migration 0008 are in `default`."""
    return Column("ledger", String(128), nullable=False, server_default=DEFAULT_LEDGER)


accounts = Table(
    "accounts",
    metadata,
    Column("position", Serial, primary_key=True, autoincrement=True),
    Column("id", Uuid(), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("account_type", String(16), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False, server_default="active"),
    Column("flags", SmallInteger(), nullable=False, server_default="0"),
    # On SQLite the default is 38 zeros (migration 0005); `insert_account` writes both.
    Column("debits_posted", Total(), nullable=False, server_default="0"),
    Column("credits_posted", Total(), nullable=False, server_default="0"),
    Column(
        "created_at",
        UtcDateTime(),
        nullable=False,
        server_default=func.current_timestamp(),
    ),
    _ledger(),
    # The target of an entry's foreign key: the entry's currency and ledger are its account's.
    # No other index may lead with `ledger`: PostgreSQL's generic plan for that key's check
    # (once per applied entry) then ties it with this one when `accounts` has no statistics,
    # and took the other, scanning every account of the ledger per entry (3x the batch
    # time for 801 accounts). So `list_accounts` walks the primary key, filtering by ledger.
    UniqueConstraint("id", "currency", "ledger"),
    CheckConstraint(
        "account_type IN ('asset', 'liability', 'equity', 'revenue', 'expense')", name="type"
    ),
    CheckConstraint("status IN ('active', 'inactive')", name="status"),
    CheckConstraint("flags >= 0 AND flags <= 3", name="flags_known"),
    CheckConstraint("debits_posted >= 0 AND credits_posted >= 0", name="totals_positive"),
    CheckConstraint(
        f"length(debits_posted) = {TOTAL_DIGITS} AND debits_posted NOT GLOB '*[^0-9]*'"
        f" AND length(credits_posted) = {TOTAL_DIGITS} AND credits_posted NOT GLOB '*[^0-9]*'",
        name="totals_digits",
    ).ddl_if(dialect="sqlite"),
    CheckConstraint(
        "(flags & 1) = 0 OR debits_posted <= credits_posted", name="debits_within_credits"
    ),
    CheckConstraint(
        "(flags & 2) = 0 OR credits_posted <= debits_posted", name="credits_within_debits"
    ),
)

posting_requests = Table(
    "posting_requests",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("client_id", String(128), nullable=False),
    Column("idempotency_key", String(128), nullable=False),
    Column("body_hash", String(64), nullable=False),
    Column("partition", SmallInteger(), nullable=False),
    Column("document", Document, nullable=False),
    Column("status", String(16), nullable=False, server_default="queued"),
    Column("error_code", String(64)),
    Column("error_detail", Text()),
    Column(
        "accepted_at",
        UtcDateTime(),
        nullable=False,
        server_default=func.current_timestamp(),
    ),
    Column("finished_at", UtcDateTime()),
    # The sending key's ledger: the accounts this posting may name.
    _ledger(),
    UniqueConstraint("client_id", "idempotency_key"),
    CheckConstraint("status IN ('queued', 'posted', 'rejected', 'failed')", name="status"),
    CheckConstraint("(status = 'queued') = (finished_at IS NULL)", name="finished_when_final"),
    Index(
        "ix_posting_requests_queued",
        "partition",
        "id",
        postgresql_where=text("status = 'queued'"),
        sqlite_where=text("status = 'queued'"),
    ),
)

transactions = Table(
    "transactions",
    metadata,
    Column("position", Serial, primary_key=True, autoincrement=True),
    # PostgreSQL fills it (gen_random_uuid); the SQLite path sends one.
    Column("id", Uuid(), nullable=False, unique=True),
    Column(
        "request_id",
        BigInteger(),
        ForeignKey("posting_requests.id"),
        nullable=False,
        unique=True,
    ),
    Column("idempotency_key", String(128), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("reference", String(128)),
    Column("description", String(1024)),
    Column("metadata", Document, nullable=False),
    Column(
        "posted_at",
        UtcDateTime(),
        nullable=False,
        server_default=func.current_timestamp(),
    ),
    # Its request's ledger. (ledger, position) is a ledger's transactions in order
    # (`list_transactions`) and the target of its entries' foreign key.
    _ledger(),
    UniqueConstraint("ledger", "position"),
)

entries = Table(
    "entries",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("transaction_position", BigInteger(), nullable=False),
    Column("account_id", Uuid(), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("direction", String(6), nullable=False),
    Column("amount_minor", BigInteger(), nullable=False),
    # Its transaction's ledger, which its account must be in: the two foreign keys below
    # hold that a posting names only accounts of its own ledger (migration 0008).
    _ledger(),
    ForeignKeyConstraint(
        ["transaction_position", "ledger"], ["transactions.position", "transactions.ledger"]
    ),
    ForeignKeyConstraint(
        ["account_id", "currency", "ledger"],
        ["accounts.id", "accounts.currency", "accounts.ledger"],
    ),
    CheckConstraint("amount_minor > 0", name="amount_positive"),
    CheckConstraint("direction IN ('debit', 'credit')", name="direction"),
    Index("ix_entries_account_transaction", "account_id", "transaction_position"),
    Index("ix_entries_transaction", "transaction_position"),
)

# Partition ownership. A worker applies a partition only while it holds the partition's
# lease: `owner` set and `renewed_at` younger than the lease time. Every claim raises
# `token`, and the apply transaction checks (owner, token) on this row under a share lock,
# so a worker that lost its lease cannot commit a batch for the partition (fencing).
partition_leases = Table(
    "partition_leases",
    metadata,
    Column("partition", SmallInteger(), primary_key=True, autoincrement=False),
    Column("owner", String(200)),
    Column("token", BigInteger(), nullable=False, server_default="0"),
    Column("renewed_at", UtcDateTime()),
    CheckConstraint("token >= 0", name="token_positive"),
    CheckConstraint("(owner IS NULL) = (renewed_at IS NULL)", name="owned_when_renewed"),
)

# Live worker processes, renewed with their leases: what operators see and what the
# workers count to share the partitions fairly.
workers = Table(
    "workers",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("pinned", JSON(), nullable=True),
    Column("partitions", JSON(), nullable=False),
    Column("batches", BigInteger(), nullable=False, server_default="0"),
    Column("applied", BigInteger(), nullable=False, server_default="0"),
    Column("last_error", Text()),
    Column("last_error_at", UtcDateTime()),
    Column(
        "started_at",
        UtcDateTime(),
        nullable=False,
        server_default=func.current_timestamp(),
    ),
    Column("heartbeat_at", UtcDateTime(), nullable=False),
)

# API keys (`ledger_core.keys`): only the SHA-256 of each secret is kept. Revoking stamps
# `revoked_at`; a key row is never deleted, so the audit of who did what keeps its name.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("client", String(128), nullable=False),
    Column("ledger", String(128), nullable=False),
    Column("scopes", JSON(), nullable=False),
    Column("rate_per_s", Numeric(12, 3)),
    Column(
        "created_at",
        UtcDateTime(),
        nullable=False,
        server_default=func.current_timestamp(),
    ),
    Column("revoked_at", UtcDateTime()),
    CheckConstraint("rate_per_s IS NULL OR rate_per_s > 0", name="rate_positive"),
    CheckConstraint("length(secret_hash) = 64", name="secret_hash_is_sha256"),
)

# The audit trail (`ledger_core.trail`): one row per change made with a key or by an
# operator, written in the change's own transaction. Append-only: migration 0007 adds
# triggers that refuse UPDATE and DELETE on both dialects.
audit_events = Table(
    "audit_events",
    metadata,
    Column("position", Serial, primary_key=True, autoincrement=True),
    Column("key_id", String(40)),
    Column("client", String(128), nullable=False),
    Column("ledger", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(200), nullable=False),
    Column("details", JSON()),
    Column("at", UtcDateTime(), nullable=False, server_default=func.current_timestamp()),
)
