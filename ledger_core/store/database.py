"""The database: engine set-up per dialect, error mapping, and the transaction scope.

`Database` owns the engine and opens transactions; `Repository` is the set of statements
run inside one of them, composed of one class per thing stored (`accounts`, `intake`,
`apply`, `backlog`, `reads`); partition leases and the worker registry (`leases`) and the
invariant checks (`audit`) open their own. Database errors are mapped by SQLSTATE into
the `LedgerError` tree here and nowhere else: serialization failures, deadlocks and lost
connections become `TransientFault`, which services retry a bounded number of times.

Invariant: every statement that changes the ledger runs inside a transaction opened by
`Database.transaction()`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError

from ledger_core.errors import TransientFault
from ledger_core.store.accounts import AccountStatements
from ledger_core.store.apply import ApplyStatements
from ledger_core.store.audit_events import AuditEventStatements
from ledger_core.store.backlog import BacklogStatements
from ledger_core.store.intake import IntakeStatements
from ledger_core.store.keys import KeyStatements
from ledger_core.store.reads import ReadStatements
from ledger_core.store.tables import SqliteTotalSum

# Serialization failure, deadlock, lock timeout, a session ended by the server (admin
# shutdown, idle in transaction too long), connection failures.
TRANSIENT_SQLSTATES = {"40001", "40P01", "55P03", "57P01", "25P03", "08000", "08003", "08006"}


def create_database(
    url: str, *, pool_size: int = 20, idle_in_transaction_s: float | None = None
) -> Database:
    """An engine for `url`. On PostgreSQL, `idle_in_transaction_s` makes the server end a
    session that stays idle inside a transaction that long (a paused or hung process), so
    its row locks cannot hold a partition hostage.

    JIT compilation is off on PostgreSQL: the batch insert of transactions and entries is
    estimated at hundreds of thousands of rows (PostgreSQL cannot know how many entries a
    stored document holds), past `jit_above_cost`, and compiling it cost about 18 ms of a
    1,000-posting batch's 140 ms while saving nothing; no statement here scans enough rows
    to gain from it."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        _configure_sqlite(engine)
    else:
        # The pid names the process in pg_stat_activity: which process holds which lock.
        connect_args: dict[str, Any] = {"application_name": f"ledgerflow/{os.getpid()}"}
        options = ["-c jit=off"]
        if idle_in_transaction_s is not None:
            timeout_ms = int(idle_in_transaction_s * 1000)
            options.append(f"-c idle_in_transaction_session_timeout={timeout_ms}")
        connect_args["options"] = " ".join(options)
        engine = create_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,
            connect_args=connect_args,
        )
    return Database(engine)


def _configure_sqlite(engine: Engine) -> None:
    """WAL and BEGIN IMMEDIATE: SQLite's writers then queue instead of failing on upgrade.
    A sum that does not overflow past 2**63 - 1, for `verify` (`tables.TotalSum`)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA foreign_keys=ON")
        dbapi_connection.create_aggregate(SqliteTotalSum.name, 1, SqliteTotalSum)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def map_database_errors() -> Iterator[None]:
    """Turn driver errors that a retry may cure into `TransientFault`."""
    try:
        yield
    except DBAPIError as error:
        sqlstate = getattr(error.orig, "sqlstate", None)
        locked = "database is locked" in str(error.orig)
        # psycopg's OperationalError: the server could not be reached or refused the
        # connection (down, restarting, too many clients).
        unreachable = isinstance(error.orig, psycopg.OperationalError)
        if error.connection_invalidated or sqlstate in TRANSIENT_SQLSTATES or locked or unreachable:
            raise TransientFault(
                f"database fault {sqlstate or ''}: {error.orig}",
                sqlstate=sqlstate
                or ("connection" if error.connection_invalidated or unreachable else "other"),
            ) from error
        raise


class Database:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Repository]:
        with map_database_errors(), self.engine.begin() as connection:
            yield Repository(connection)

    @contextmanager
    def reads(self) -> Iterator[Repository]:
        """Statements that only read, each on its own (autocommit on PostgreSQL): no BEGIN
        and COMMIT round trips around a single query. SQLite reads in a transaction."""
        if self.dialect == "sqlite":
            with self.transaction() as repository:
                yield repository
            return
        with (
            map_database_errors(),
            self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection,
        ):
            yield Repository(connection)

    def ping(self) -> None:
        with map_database_errors(), self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


class Repository(
    AccountStatements,
    IntakeStatements,
    ApplyStatements,
    BacklogStatements,
    ReadStatements,
    KeyStatements,
    AuditEventStatements,
):
    """Statements run inside one database transaction."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
