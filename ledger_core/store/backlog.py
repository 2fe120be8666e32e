"""The backlog: what is queued, stale or failed, as the API's gate, the reconciler,
operators and waiters see it. Only reads, apart from an operator's requeue of failed
requests.

Ages are measured against the database's clock (`now`), never this host's, so every
process and the stamps the database wrote agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, and_, func, or_, select, text, update

from ledger_core.model import ClientId, FailedPosting, PostingStatus, RequestId
from ledger_core.store.rows import queued_in
from ledger_core.store.tables import posting_requests


class BacklogStatements:
    connection: Connection

    def now(self) -> datetime:
        """The database's clock (PostgreSQL: the transaction's start), so ages computed
        against times the database stamped do not depend on this host's clock."""
        if self.connection.dialect.name == "postgresql":
            moment: datetime = self.connection.execute(select(func.now())).scalar_one()
            return moment
        return datetime.now(UTC)

    def autovacuum_on(self) -> bool | None:
        """Whether the server vacuums by itself (None: not PostgreSQL)."""
        if self.connection.dialect.name != "postgresql":
            return None
        return bool(self.connection.execute(text("SHOW autovacuum")).scalar_one() == "on")

    def has_queued(self, partitions: Sequence[int]) -> bool:
        """Whether any of `partitions` holds a queued request (probes of the queued index)."""
        found = self.connection.execute(
            select(posting_requests.c.id)
            .where(
                posting_requests.c.partition.in_(sorted(set(partitions))),
                posting_requests.c.status == PostingStatus.QUEUED.value,
            )
            .limit(1)
        ).first()
        return found is not None

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
                .where(queued_in(partition))
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

    def stale_queued(self, older_than_s: float) -> dict[int, RequestId]:
        """Per partition, the newest request still queued that was accepted more than
        `older_than_s` ago by the database's clock."""
        cutoff = self.now() - timedelta(seconds=older_than_s)
        rows = self.connection.execute(
            select(posting_requests.c.partition, func.max(posting_requests.c.id))
            .where(
                posting_requests.c.status == PostingStatus.QUEUED.value,
                posting_requests.c.accepted_at < cutoff,
            )
            .group_by(posting_requests.c.partition)
        ).all()
        return {int(row[0]): RequestId(int(row[1])) for row in rows}
