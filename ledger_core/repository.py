"""The repository: the only module that speaks SQL (with `tables.py`).

`Database` owns the engine and opens transactions; `Repository` is the set of statements
run inside one of them. Database errors are mapped by SQLSTATE into the `LedgerError`
tree here and nowhere else: serialization failures, deadlocks and lost connections become
`TransientFault`, which services retry a bounded number of times.

Invariant: every statement that changes the ledger runs inside a transaction opened by
`Database.transaction()`, and the worker's statements lock intake rows (by id) before
account rows (sorted by id), so two appliers can never deadlock each other on ordering.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from sqlalchemy import (
    Connection,
    Engine,
    Row,
    and_,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError

from ledger_core import bulk
from ledger_core.errors import InvalidCursor, LeaseLost, TransientFault
from ledger_core.model import (
    Account,
    AccountFlag,
    AccountId,
    AccountStatus,
    AccountType,
    Balance,
    ClientId,
    Direction,
    Entry,
    FailedPosting,
    Fence,
    Outcome,
    Posted,
    PostingRecord,
    PostingStatus,
    QueuedPosting,
    RequestId,
    Transaction,
    TransactionId,
)
from ledger_core.rules import posting_from_document
from ledger_core.tables import (
    accounts,
    entries,
    partition_leases,
    posting_requests,
    transactions,
)

# Serialization failure, deadlock, lock timeout, a session ended by the server (admin
# shutdown, idle in transaction too long), connection failures.
TRANSIENT_SQLSTATES = {"40001", "40P01", "55P03", "57P01", "25P03", "08000", "08003", "08006"}


def create_database(
    url: str, *, pool_size: int = 20, idle_in_transaction_s: float | None = None
) -> Database:
    """An engine for `url`. On PostgreSQL, `idle_in_transaction_s` makes the server end a
    session that stays idle inside a transaction that long (a paused or hung process), so
    its row locks cannot hold a partition hostage."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        _configure_sqlite(engine)
    else:
        # The pid names the process in pg_stat_activity: which process holds which lock.
        connect_args: dict[str, Any] = {"application_name": f"ledgerflow/{os.getpid()}"}
        if idle_in_transaction_s is not None:
            timeout_ms = int(idle_in_transaction_s * 1000)
            connect_args["options"] = f"-c idle_in_transaction_session_timeout={timeout_ms}"
        engine = create_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,
            connect_args=connect_args,
        )
    return Database(engine)


def _configure_sqlite(engine: Engine) -> None:
    """WAL and BEGIN IMMEDIATE: SQLite's writers then queue instead of failing on upgrade."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA foreign_keys=ON")

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


def encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(f"p{position}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith("p"):
            raise ValueError(raw)
        return int(raw[1:])
    except ValueError:
        raise InvalidCursor("cursor was not produced by this service") from None


@dataclass(frozen=True)
class IntakeRow:
    """One posting request to record: the canonical JSON document and where it routes."""

    client_id: ClientId
    idempotency_key: str
    body_hash: str
    partition: int
    document: str


@dataclass(frozen=True)
class IntakeResult:
    """What intake found for one row: the stored request, and whether this call created it."""

    record: PostingRecord
    created: bool


def _account(row: Any) -> Account:
    return Account(
        id=AccountId(row.id),
        name=row.name,
        account_type=AccountType(row.account_type),
        currency=row.currency,
        status=AccountStatus(row.status),
        flags=AccountFlag(row.flags),
        debits_posted=row.debits_posted,
        credits_posted=row.credits_posted,
        created_at=row.created_at,
    )


def _record(row: Any, transaction: Transaction | None = None) -> PostingRecord:
    return PostingRecord(
        request_id=RequestId(row.id),
        client_id=ClientId(row.client_id),
        idempotency_key=row.idempotency_key,
        body_hash=row.body_hash,
        partition=row.partition,
        status=PostingStatus(row.status),
        accepted_at=row.accepted_at,
        error_code=row.error_code,
        error_detail=row.error_detail,
        transaction=transaction,
    )


def _queued_in(partition: int) -> Any:
    """The requests still queued in `partition`: what the partial queued index holds."""
    return and_(
        posting_requests.c.partition == partition,
        posting_requests.c.status == PostingStatus.QUEUED.value,
    )


_RECORD_COLUMNS = (
    posting_requests.c.id,
    posting_requests.c.client_id,
    posting_requests.c.idempotency_key,
    posting_requests.c.body_hash,
    posting_requests.c.partition,
    posting_requests.c.status,
    posting_requests.c.accepted_at,
    posting_requests.c.error_code,
    posting_requests.c.error_detail,
)


class Repository:
    """Statements run inside one database transaction."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def now(self) -> datetime:
        """The database's clock (PostgreSQL: the transaction's start), so ages computed
        against times the database stamped do not depend on this host's clock."""
        if self.connection.dialect.name == "postgresql":
            moment: datetime = self.connection.execute(select(func.now())).scalar_one()
            return moment
        return datetime.now(UTC)

    # Accounts

    def insert_account(self, account: Account) -> Account:
        row = self.connection.execute(
            insert(accounts)
            .values(
                id=account.id,
                name=account.name,
                account_type=account.account_type.value,
                currency=account.currency,
                status=account.status.value,
                flags=int(account.flags),
            )
            .returning(*accounts.c)
        ).one()
        return _account(row)

    def get_account(self, account_id: AccountId) -> Account | None:
        row = self.connection.execute(
            select(accounts).where(accounts.c.id == account_id)
        ).one_or_none()
        return None if row is None else _account(row)

    def list_accounts(self, cursor: str | None, limit: int) -> tuple[list[Account], str | None]:
        rows = self.connection.execute(
            select(accounts)
            .where(accounts.c.position > decode_cursor(cursor))
            .order_by(accounts.c.position)
            .limit(limit + 1)
        ).all()
        page = rows[:limit]
        next_cursor = encode_cursor(page[-1].position) if len(rows) > limit else None
        return [_account(row) for row in page], next_cursor

    def set_account_status(self, account_id: AccountId, status: AccountStatus) -> Account | None:
        row = self.connection.execute(
            update(accounts)
            .where(accounts.c.id == account_id)
            .values(status=status.value)
            .returning(*accounts.c)
        ).one_or_none()
        return None if row is None else _account(row)

    # Intake

    def record_requests(self, rows: Sequence[IntakeRow]) -> list[IntakeResult]:
        """Insert new requests; for keys already taken, return what is stored under them.

        One INSERT ... ON CONFLICT DO NOTHING: the unique (client, key) constraint decides
        which request is first, so concurrent duplicates can never both be created.
        """
        created: Sequence[Any]
        if self.connection.dialect.name == "postgresql":
            created = bulk.insert_requests(self.connection, rows)
        else:
            created = self.connection.execute(
                sqlite_insert(posting_requests)
                .on_conflict_do_nothing(index_elements=["client_id", "idempotency_key"])
                .returning(*_RECORD_COLUMNS),
                [
                    {
                        "client_id": row.client_id,
                        "idempotency_key": row.idempotency_key,
                        "body_hash": row.body_hash,
                        "partition": row.partition,
                        "document": json.loads(row.document),
                    }
                    for row in rows
                ],
            ).all()
        created_keys = {(row.client_id, row.idempotency_key) for row in created}
        stored = {(row.client_id, row.idempotency_key): _record(row) for row in created}
        missing: set[tuple[str, str]] = {(r.client_id, r.idempotency_key) for r in rows}
        missing -= created_keys
        stored.update(self._records_by_key(missing))
        results: list[IntakeResult] = []
        for row in rows:
            key = (row.client_id, row.idempotency_key)
            results.append(IntakeResult(stored[key], key in created_keys))
            created_keys.discard(key)
        return results

    def _records_by_key(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], PostingRecord]:
        found: dict[tuple[str, str], PostingRecord] = {}
        by_client: dict[str, list[str]] = {}
        for client_id, key in keys:
            by_client.setdefault(client_id, []).append(key)
        for client_id, keys_of_client in by_client.items():
            rows = self.connection.execute(
                select(*_RECORD_COLUMNS).where(
                    posting_requests.c.client_id == client_id,
                    posting_requests.c.idempotency_key.in_(keys_of_client),
                )
            ).all()
            found.update({(row.client_id, row.idempotency_key): _record(row) for row in rows})
        return found

    def get_record(self, client_id: ClientId, idempotency_key: str) -> PostingRecord | None:
        row = self.connection.execute(
            select(*_RECORD_COLUMNS).where(
                posting_requests.c.client_id == client_id,
                posting_requests.c.idempotency_key == idempotency_key,
            )
        ).one_or_none()
        if row is None:
            return None
        transaction = None
        if row.status == PostingStatus.POSTED.value:
            transaction = self._transaction_where(transactions.c.request_id == row.id)
        return _record(row, transaction)

    # Applying

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
            .where(_queued_in(partition))
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

    def autovacuum_on(self) -> bool | None:
        """Whether the server vacuums by itself (None: not PostgreSQL)."""
        if self.connection.dialect.name != "postgresql":
            return None
        return bool(self.connection.execute(text("SHOW autovacuum")).scalar_one() == "on")

    def has_queued(self, partition: int) -> bool:
        """Whether the partition holds a queued request (one probe of the queued index)."""
        found = self.connection.execute(
            select(posting_requests.c.id).where(_queued_in(partition)).limit(1)
        ).first()
        return found is not None

    def lock_oldest_queued_id(self, partition: int) -> RequestId | None:
        """Lock the oldest queued request of a partition without reading its document."""
        request_id = self.connection.execute(
            select(posting_requests.c.id)
            .where(_queued_in(partition))
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

    def write_batch(
        self,
        postings: Sequence[QueuedPosting],
        outcomes: Sequence[Outcome],
        balances: Sequence[Balance],
    ) -> Posted:
        """Store what one applied batch decided: transactions, entries, totals, statuses.

        Returns the transaction ids of the posted requests (PostgreSQL; SQLite returns none
        and waiters read the record back)."""
        by_request = {queued.request_id: queued for queued in postings}
        accepted = [by_request[o.request_id] for o in outcomes if o.posted]
        if self.connection.dialect.name == "postgresql":
            posted = bulk.insert_transactions(self.connection, accepted) if accepted else Posted()
            if balances:
                bulk.update_totals(self.connection, balances)
            bulk.finish_requests(self.connection, outcomes)
            return posted
        # SQLite, the embedded default: the same writes as executemany statements.
        if accepted:
            self._insert_transactions(accepted)
        if balances:
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
                    for b in balances
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
                for o in outcomes
            ],
        )
        return Posted()

    def _insert_transactions(self, accepted: Sequence[QueuedPosting]) -> None:
        inserted = self.connection.execute(
            insert(transactions).returning(transactions.c.position, sort_by_parameter_order=True),
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
                for queued in accepted
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
                for row, queued in zip(inserted, accepted, strict=True)
                for entry in queued.posting.entries
            ],
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

    def failed(self, limit: int) -> list[FailedPosting]:
        rows = self.connection.execute(
            select(
                posting_requests.c.id,
                posting_requests.c.client_id,
                posting_requests.c.idempotency_key,
                posting_requests.c.partition,
                posting_requests.c.error_code,
                posting_requests.c.error_detail,
                posting_requests.c.accepted_at,
                posting_requests.c.finished_at,
            )
            .where(posting_requests.c.status == PostingStatus.FAILED.value)
            .order_by(posting_requests.c.id)
            .limit(limit)
        ).all()
        return [
            FailedPosting(
                request_id=RequestId(row.id),
                client_id=ClientId(row.client_id),
                idempotency_key=row.idempotency_key,
                partition=int(row.partition),
                error_code=row.error_code,
                error_detail=row.error_detail,
                accepted_at=row.accepted_at,
                finished_at=row.finished_at,
            )
            for row in rows
        ]

    def count_failed(self) -> int:
        return int(
            self.connection.execute(
                select(func.count()).where(posting_requests.c.status == PostingStatus.FAILED.value)
            ).scalar_one()
        )

    def requeue_failed(
        self, keys: Sequence[tuple[ClientId | None, str]] | None
    ) -> list[tuple[RequestId, int]]:
        """Put failed requests back in their partition's queue; None means every one.

        A key with no client names that key under any client. Returns (id, partition)
        of what was requeued; requests that are not `failed` are left alone.
        """
        statement = (
            update(posting_requests)
            .where(posting_requests.c.status == PostingStatus.FAILED.value)
            .values(
                status=PostingStatus.QUEUED.value,
                error_code=None,
                error_detail=None,
                finished_at=None,
            )
            .returning(posting_requests.c.id, posting_requests.c.partition)
        )
        if keys is not None:
            if not keys:
                return []
            statement = statement.where(
                or_(
                    *(
                        posting_requests.c.idempotency_key == key
                        if client_id is None
                        else and_(
                            posting_requests.c.client_id == client_id,
                            posting_requests.c.idempotency_key == key,
                        )
                        for client_id, key in keys
                    )
                )
            )
        rows = self.connection.execute(statement).all()
        return sorted((RequestId(row.id), int(row.partition)) for row in rows)

    def oldest_queued(self, partitions: int) -> dict[int, datetime]:
        """Per partition with queued requests, when its oldest one was accepted.

        One index probe per partition (the partial index on queued requests), so the
        cost does not grow with the backlog.
        """
        found: dict[int, datetime] = {}
        for partition in range(partitions):
            accepted_at = self.connection.execute(
                select(posting_requests.c.accepted_at)
                .where(_queued_in(partition))
                .order_by(posting_requests.c.id)
                .limit(1)
            ).scalar_one_or_none()
            if accepted_at is not None:
                found[partition] = accepted_at
        return found

    def count_queued(self, at_most: int) -> int:
        """How many requests are queued, counting no further than `at_most`."""
        capped = (
            select(posting_requests.c.id)
            .where(posting_requests.c.status == PostingStatus.QUEUED.value)
            .limit(at_most)
            .subquery()
        )
        return int(self.connection.execute(select(func.count()).select_from(capped)).scalar_one())

    def statuses(self, request_ids: Sequence[RequestId]) -> dict[RequestId, PostingStatus]:
        rows = self.connection.execute(
            select(posting_requests.c.id, posting_requests.c.status).where(
                posting_requests.c.id.in_(request_ids)
            )
        ).all()
        return {RequestId(row.id): PostingStatus(row.status) for row in rows}

    def queued_by_partition(self) -> list[tuple[int, int, datetime]]:
        """(partition, queued requests, oldest acceptance time) for partitions with work."""
        rows = self.connection.execute(
            select(
                posting_requests.c.partition,
                func.count(),
                func.min(posting_requests.c.accepted_at),
            )
            .where(posting_requests.c.status == PostingStatus.QUEUED.value)
            .group_by(posting_requests.c.partition)
        ).all()
        return [(int(row[0]), int(row[1]), row[2]) for row in rows]

    def stale_queued(self, older_than: datetime) -> dict[int, RequestId]:
        """Per partition, the newest request still queued that was accepted before `older_than`."""
        rows = self.connection.execute(
            select(posting_requests.c.partition, func.max(posting_requests.c.id))
            .where(
                posting_requests.c.status == PostingStatus.QUEUED.value,
                posting_requests.c.accepted_at < older_than,
            )
            .group_by(posting_requests.c.partition)
        ).all()
        return {int(row[0]): RequestId(int(row[1])) for row in rows}

    # Reads

    def get_transaction(self, transaction_id: TransactionId) -> Transaction | None:
        return self._transaction_where(transactions.c.id == transaction_id)

    def _transaction_where(self, condition: Any) -> Transaction | None:
        row = self.connection.execute(select(transactions).where(condition)).one_or_none()
        if row is None:
            return None
        return self._transactions_from_rows([row])[0]

    def list_transactions(
        self, account_id: AccountId | None, cursor: str | None, limit: int
    ) -> tuple[list[Transaction], str | None]:
        query = select(transactions).where(transactions.c.position > decode_cursor(cursor))
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
