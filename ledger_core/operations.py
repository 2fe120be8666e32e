"""The operators' use cases: the backlog's age and size, failed postings and their replay,
the clock. A part of `Ledger` (`ledger_core.services`), kept apart by what it serves.

Every age is measured on the database's clock (`clock`, `Repository.now`), never this
host's, so every process and the stamps the database wrote agree.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from ledger_core.model import ClientId, FailedPosting, RequestId
from ledger_core.store.database import Database
from ledger_core.trail import POSTINGS_RETRIED, Actor

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class PartitionLag:
    partition: int
    queued: int
    oldest_age_s: float


def _age_s(moment: datetime, now: datetime) -> float:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (now - moment).total_seconds())


class Operations:
    """Mixed into `Ledger`, which provides the database, the partition count and the
    bounded retry of transient faults."""

    database: Database
    partitions: int
    _retrying: Callable[[Callable[[], T]], T]

    def clock(self) -> datetime:
        """The database's clock: the one every age and lag is measured on."""
        with self.database.reads() as repository:
            return repository.now()

    def autovacuum_on(self) -> bool | None:
        """Whether PostgreSQL's autovacuum runs: the queue table depends on it."""
        with self.database.reads() as repository:
            return repository.autovacuum_on()

    def failed_postings(self, limit: int = 100) -> list[FailedPosting]:
        with self.database.transaction() as repository:
            return repository.failed(limit)

    def count_failed(self) -> int:
        with self.database.transaction() as repository:
            return repository.count_failed()

    def requeue_failed(
        self, keys: Sequence[tuple[ClientId | None, str]] | None, *, actor: Actor
    ) -> dict[int, list[RequestId]]:
        """Queue failed requests again (all of them when `keys` is None), by partition.

        The caller enqueues a job for each partition returned. A requeued request is the
        oldest of its partition again and is applied before anything accepted after it.
        """

        def requeue() -> dict[int, list[RequestId]]:
            with self.database.transaction() as repository:
                rows = repository.requeue_failed(keys)
                if rows:
                    named = None if keys is None else [[c, k] for c, k in keys]
                    ids = sorted(int(request_id) for request_id, _ in rows)
                    facts = {"request_ids": ids, "keys": named}
                    repository.insert_event(actor, POSTINGS_RETRIED, "postings", facts)
            by_partition: dict[int, list[RequestId]] = {}
            for request_id, partition in rows:
                by_partition.setdefault(partition, []).append(request_id)
            return by_partition

        result = self._retrying(requeue)
        if result:
            log.warning("requeued failed requests %s", result)
        return result

    def lag_snapshot(self, queued_max: int) -> tuple[dict[int, float], int]:
        """({partition: age in seconds of its oldest queued request}, queued up to `queued_max`).

        Cheap at any backlog: one index probe per partition and a capped count.
        """
        with self.database.transaction() as repository:
            now = repository.now()
            oldest = repository.oldest_queued(self.partitions)
            queued = repository.count_queued(queued_max)
        return {p: _age_s(moment, now) for p, moment in oldest.items()}, queued

    def stale_partitions(self, older_than_s: float) -> dict[int, RequestId]:
        """Per partition, the newest request queued for longer than `older_than_s` (by the
        database's clock)."""

        def find() -> dict[int, RequestId]:
            with self.database.transaction() as repository:
                return repository.stale_queued(older_than_s)

        return self._retrying(find)

    def partition_lag(self) -> list[PartitionLag]:
        """Every partition's queued requests and the age of its oldest one."""
        with self.database.transaction() as repository:
            now = repository.now()
            rows = {p: (count, oldest) for p, count, oldest in repository.queued_by_partition()}
        return [
            PartitionLag(
                partition=partition,
                queued=rows[partition][0] if partition in rows else 0,
                oldest_age_s=_age_s(rows[partition][1], now) if partition in rows else 0.0,
            )
            for partition in range(self.partitions)
        ]
