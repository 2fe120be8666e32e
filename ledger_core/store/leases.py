"""Partition ownership in PostgreSQL: leases with fencing tokens, and the live workers.

A worker applies a partition only while it holds the partition's lease, a row of
`partition_leases` naming it as owner, renewed by heartbeat. A lease not renewed within
the lease time is free to claim. Every claim raises the row's `token`. The apply
transaction begins by reading the row under a share lock and checking that it still
names (owner, token) (`Repository.check_fences`): a claim must update that row, so it waits for a
batch in flight to end, and once it has committed no batch under the old token can
commit. A worker that was paused past its lease therefore cannot write a batch for a
partition someone else now owns, whatever its clock or its Redis view says.

Claims skip rows locked by a batch in flight (`SKIP LOCKED`): a partition is taken over
between batches, never by waiting on one.

Times come from the database's clock on PostgreSQL (one clock for every host); the
embedded SQLite ledger has one process and uses the local clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Interval,
    and_,
    case,
    delete,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ledger_core.ownership import Lease, WorkerReport, WorkerState
from ledger_core.store.database import Database
from ledger_core.store.tables import partition_leases, workers

WORKER_FORGET_AFTER_S = 600.0


def _now(connection: Connection) -> Any:
    if connection.dialect.name == "postgresql":
        return func.now()
    return datetime.now(UTC)


def _cutoff(connection: Connection, seconds: float) -> Any:
    if connection.dialect.name == "postgresql":
        return func.now() - literal(timedelta(seconds=seconds), Interval())
    return datetime.now(UTC) - timedelta(seconds=seconds)


def _db_now(connection: Connection) -> datetime:
    if connection.dialect.name == "postgresql":
        moment: datetime = connection.execute(select(func.now())).scalar_one()
        return moment
    return datetime.now(UTC)


def _age(moment: datetime | None, now: datetime) -> float | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (now - moment).total_seconds())


def _upsert(connection: Connection) -> Any:
    return pg_insert if connection.dialect.name == "postgresql" else sqlite_insert


def _held_by(owner: str, held: Mapping[int, int]) -> Any:
    """The lease rows of `held` ({partition: token}) that `owner` still holds under those
    tokens."""
    return and_(
        partition_leases.c.owner == owner,
        or_(
            *(
                and_(partition_leases.c.partition == partition, partition_leases.c.token == token)
                for partition, token in held.items()
            )
        ),
    )


def _set_lock_timeout(connection: Connection, seconds: float) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{int(seconds * 1000)}ms'")


class Ownership:
    """Lease and worker-registry statements, each in its own short transaction."""

    def __init__(self, database: Database, *, partitions: int, ttl_s: float) -> None:
        self.database = database
        self.partitions = partitions
        self.ttl_s = ttl_s

    def ensure_partitions(self) -> None:
        """Create the lease rows of every partition (idempotent)."""
        with self.database.transaction() as repository:
            connection = repository.connection
            connection.execute(
                _upsert(connection)(partition_leases).on_conflict_do_nothing(
                    index_elements=["partition"]
                ),
                [{"partition": p, "token": 0} for p in range(self.partitions)],
            )

    def claim(self, owner: str, candidates: Iterable[int], count: int) -> dict[int, int]:
        """Take up to `count` free or expired leases among `candidates`, lowest first.

        Returns {partition: token} of what was taken. Rows locked by a batch in flight
        are skipped.
        """
        wanted = sorted(set(candidates))
        if count <= 0 or not wanted:
            return {}
        with self.database.transaction() as repository:
            connection = repository.connection
            free = (
                select(partition_leases.c.partition)
                .where(
                    partition_leases.c.partition.in_(wanted),
                    or_(
                        partition_leases.c.owner.is_(None),
                        partition_leases.c.renewed_at < _cutoff(connection, self.ttl_s),
                    ),
                )
                .order_by(partition_leases.c.partition)
                .limit(count)
                .with_for_update(skip_locked=True)
            )
            rows = connection.execute(
                update(partition_leases)
                .where(partition_leases.c.partition.in_(free.scalar_subquery()))
                .values(
                    owner=owner,
                    token=partition_leases.c.token + 1,
                    renewed_at=_now(connection),
                )
                .returning(partition_leases.c.partition, partition_leases.c.token)
            ).all()
        return {int(row.partition): int(row.token) for row in rows}

    def renew(self, owner: str, held: Mapping[int, int], report: WorkerReport) -> set[int]:
        """Renew the leases in `held` ({partition: token}) and the worker's registry row.

        Returns the partitions still held; a lease that was taken over is not renewed.
        Waits at most a third of the lease time for a batch in flight of this worker.
        """
        with self.database.transaction() as repository:
            connection = repository.connection
            _set_lock_timeout(connection, self.ttl_s / 3)
            kept: set[int] = set()
            if held:
                rows = connection.execute(
                    update(partition_leases)
                    .where(_held_by(owner, held))
                    .values(renewed_at=_now(connection))
                    .returning(partition_leases.c.partition)
                ).all()
                kept = {int(row.partition) for row in rows}
            self._report(connection, report, sorted(kept))
        return kept

    def register(self, report: WorkerReport) -> None:
        with self.database.transaction() as repository:
            self._report(repository.connection, report, report.partitions)

    def _report(self, connection: Connection, report: WorkerReport, held: list[int]) -> None:
        now = _now(connection)
        values: dict[str, Any] = {
            "pinned": report.pinned,
            "partitions": held,
            "batches": report.batches,
            "applied": report.applied,
            "heartbeat_at": now,
        }
        inserted = dict(values)
        updated = dict(values)
        if report.last_error is not None:
            error = report.last_error[:2000]
            inserted |= {"last_error": error, "last_error_at": now}
            # The time of the error, not of the heartbeat that repeats it.
            updated |= {
                "last_error": error,
                "last_error_at": case(
                    (workers.c.last_error.is_distinct_from(error), now),
                    else_=workers.c.last_error_at,
                ),
            }
        connection.execute(
            _upsert(connection)(workers)
            .values(name=report.name, **inserted)
            .on_conflict_do_update(index_elements=["name"], set_=updated)
        )

    def release(self, owner: str, held: Mapping[int, int]) -> None:
        """Give up the leases in `held`; the next claimant need not wait for expiry."""
        if not held:
            return
        with self.database.transaction() as repository:
            connection = repository.connection
            _set_lock_timeout(connection, self.ttl_s / 3)
            connection.execute(
                update(partition_leases)
                .where(_held_by(owner, held))
                .values(owner=None, renewed_at=None)
            )

    def forget(self, name: str) -> None:
        """Remove a worker from the registry (it stopped cleanly)."""
        with self.database.transaction() as repository:
            repository.connection.execute(delete(workers).where(workers.c.name == name))

    def leases(self) -> list[Lease]:
        with self.database.transaction() as repository:
            connection = repository.connection
            now = _db_now(connection)
            rows = connection.execute(
                select(partition_leases).order_by(partition_leases.c.partition)
            ).all()
        result = []
        for row in rows:
            age = _age(row.renewed_at, now)
            result.append(
                Lease(
                    partition=int(row.partition),
                    owner=row.owner,
                    token=int(row.token),
                    age_s=age,
                    live=row.owner is not None and age is not None and age < self.ttl_s,
                )
            )
        return result

    def workers(self, *, forget_silent: bool = False) -> list[WorkerState]:
        """Registered workers, live first. With `forget_silent` (workers pass it), rows of
        workers silent for `WORKER_FORGET_AFTER_S` are deleted first."""
        with self.database.transaction() as repository:
            connection = repository.connection
            if forget_silent:
                connection.execute(
                    delete(workers).where(
                        workers.c.heartbeat_at < _cutoff(connection, WORKER_FORGET_AFTER_S)
                    )
                )
            now = _db_now(connection)
            rows = connection.execute(select(workers).order_by(workers.c.name)).all()
        states = []
        for row in rows:
            heartbeat_age = _age(row.heartbeat_at, now) or 0.0
            states.append(
                WorkerState(
                    name=row.name,
                    pinned=list(row.pinned) if row.pinned is not None else None,
                    partitions=list(row.partitions),
                    batches=int(row.batches),
                    applied=int(row.applied),
                    last_error=row.last_error,
                    last_error_age_s=_age(row.last_error_at, now),
                    started_age_s=_age(row.started_at, now) or 0.0,
                    heartbeat_age_s=heartbeat_age,
                    live=heartbeat_age < self.ttl_s,
                )
            )
        return sorted(states, key=lambda s: (not s.live, s.name))
