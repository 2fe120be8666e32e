"""The operator's view of a deployment: one typed value, built here and nowhere else.

`ops_status` reads it from PostgreSQL (the record: queued postings and their ages, leases,
the worker registry, failed postings) and Redis (jobs waiting, applied and refused per
second); the status endpoint and `ledgerflow ops status --json` render it with
`to_json`, the `/ops` page polls that JSON, the CLI's table and the metrics read its
fields. Every age is measured on the database's clock.

Per partition: postings queued and the age of the oldest, RQ jobs waiting, the lease
owner and how long since it renewed, applied and refused per second over the last ten
seconds. Per worker: heartbeat age, partitions, pinned, batches, postings applied, last
error. Totals, and the failed postings waiting for an operator.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from ledger_core.model import ClientId, FailedPosting
from ledger_core.services import Ledger
from ledger_core.store.leases import Ownership
from ledger_core.trail import Actor
from runtime.context import Runtime
from runtime.queues import enqueue_batches, queue_depths
from runtime.telemetry import read_rates

RATE_WINDOW_S = 10


@dataclass(frozen=True, slots=True)
class PartitionStatus:
    partition: int
    queued: int
    oldest_age_s: float
    jobs_waiting: int
    owner: str | None  # the live lease holder
    lease_owner: str | None  # the last holder even when its lease expired: who lost it
    lease_age_s: float | None
    lease_token: int
    applied_per_s: float
    refused_per_s: float


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    name: str
    live: bool
    heartbeat_age_s: float
    started_age_s: float
    partitions: list[int]
    pinned: list[int] | None
    batches: int
    applied: int
    last_error: str | None
    last_error_age_s: float | None


@dataclass(frozen=True, slots=True)
class Totals:
    queued: int
    oldest_age_s: float
    applied_per_s: float
    refused_per_s: float
    unowned_partitions: int
    live_workers: int
    failed: int


@dataclass(frozen=True, slots=True)
class OpsStatus:
    partitions: list[PartitionStatus]
    workers: list[WorkerStatus]
    totals: Totals
    failed: list[FailedPosting]
    # Every applied posting leaves dead row versions; without autovacuum the queue slows
    # down as they pile up (docs/OPERATIONS.md). None: not PostgreSQL.
    autovacuum: bool | None
    rate_window_s: int
    lease_ttl_s: float
    lag_max_s: float
    queued_max: int
    generated_at: datetime

    def to_json(self) -> dict[str, Any]:
        """The status as JSON: the endpoint's body and `ops status --json`."""
        return {
            "partitions": [asdict(p) for p in self.partitions],
            "workers": [asdict(w) for w in self.workers],
            "totals": asdict(self.totals),
            "failed": [failed_public(f) for f in self.failed],
            "database": {"autovacuum": self.autovacuum},
            "rate_window_s": self.rate_window_s,
            "lease_ttl_s": self.lease_ttl_s,
            "lag_max_s": self.lag_max_s,
            "queued_max": self.queued_max,
            "generated_at": self.generated_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class PartitionBacklog:
    partition: int
    queued: int
    oldest_age_s: float
    jobs_waiting: int


@dataclass(frozen=True, slots=True)
class Backlog:
    """The queue alone: what `GET /api/v1/ops/partitions` shows and load tools poll (two
    reads, cheap enough to poll many times a second)."""

    partitions: list[PartitionBacklog]

    @property
    def queued(self) -> int:
        return sum(p.queued for p in self.partitions)

    def to_json(self) -> dict[str, Any]:
        return {"queued": self.queued, "partitions": [asdict(p) for p in self.partitions]}


def backlog(runtime: Runtime, ledger: Ledger) -> Backlog:
    """Per partition: postings queued in PostgreSQL, the oldest one's age, jobs waiting."""
    depths = queue_depths(runtime.redis, runtime.settings.partitions)
    return Backlog(
        [
            PartitionBacklog(
                partition=item.partition,
                queued=item.queued,
                oldest_age_s=round(item.oldest_age_s, 3),
                jobs_waiting=depths.get(item.partition, 0),
            )
            for item in ledger.partition_lag()
        ]
    )


def ownership_of(runtime: Runtime) -> Ownership:
    settings = runtime.settings
    return Ownership(runtime.database, partitions=settings.partitions, ttl_s=settings.lease_ttl_s)


def failed_public(failed: FailedPosting) -> dict[str, Any]:
    """A failed posting as operators read it (status JSON, `ledgerflow ops failed --json`)."""
    return {
        "request_id": failed.request_id,
        "client_id": failed.client_id,
        "idempotency_key": failed.idempotency_key,
        "partition": failed.partition,
        "error_code": failed.error_code,
        "error_detail": failed.error_detail,
        "accepted_at": failed.accepted_at.isoformat(),
        "finished_at": None if failed.finished_at is None else failed.finished_at.isoformat(),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def ops_status(runtime: Runtime, ledger: Ledger) -> OpsStatus:
    """Read the deployment's status now."""
    ownership = ownership_of(runtime)
    leases = {lease.partition: lease for lease in ownership.leases()}
    rates = read_rates(runtime.redis, RATE_WINDOW_S)
    partitions: list[PartitionStatus] = []
    for item in backlog(runtime, ledger).partitions:
        lease = leases.get(item.partition)
        live = lease is not None and lease.live
        applied_s, refused_s = rates.get(item.partition, (0.0, 0.0))
        partitions.append(
            PartitionStatus(
                partition=item.partition,
                queued=item.queued,
                oldest_age_s=item.oldest_age_s,
                jobs_waiting=item.jobs_waiting,
                owner=lease.owner if lease is not None and live else None,
                lease_owner=lease.owner if lease is not None else None,
                lease_age_s=_round(lease.age_s) if lease is not None and live else None,
                lease_token=lease.token if lease is not None else 0,
                applied_per_s=round(applied_s, 1),
                refused_per_s=round(refused_s, 1),
            )
        )
    workers = [
        WorkerStatus(
            name=w.name,
            live=w.live,
            heartbeat_age_s=round(w.heartbeat_age_s, 3),
            started_age_s=round(w.started_age_s, 3),
            partitions=w.partitions,
            pinned=w.pinned,
            batches=w.batches,
            applied=w.applied,
            last_error=w.last_error,
            last_error_age_s=_round(w.last_error_age_s),
        )
        for w in ownership.workers()
    ]
    totals = Totals(
        queued=sum(p.queued for p in partitions),
        oldest_age_s=max((p.oldest_age_s for p in partitions), default=0.0),
        applied_per_s=round(sum(p.applied_per_s for p in partitions), 1),
        refused_per_s=round(sum(p.refused_per_s for p in partitions), 1),
        unowned_partitions=sum(1 for p in partitions if p.owner is None),
        live_workers=sum(1 for w in workers if w.live),
        failed=ledger.count_failed(),
    )
    settings = runtime.settings
    return OpsStatus(
        partitions=partitions,
        workers=workers,
        totals=totals,
        failed=ledger.failed_postings(limit=100),
        autovacuum=ledger.autovacuum_on(),
        rate_window_s=RATE_WINDOW_S,
        lease_ttl_s=settings.lease_ttl_s,
        lag_max_s=settings.lag_max_s,
        queued_max=settings.queued_max,
        generated_at=ledger.clock(),
    )


def retry_failed(
    runtime: Runtime,
    ledger: Ledger,
    keys: list[tuple[str | None, str]] | None,
    *,
    actor: Actor,
) -> dict[int, list[int]]:
    """Queue failed postings again (every one when `keys` is None) and enqueue their jobs;
    the audit trail records who did it."""
    requeued = ledger.requeue_failed(
        None if keys is None else [(None if c is None else ClientId(c), k) for c, k in keys],
        actor=actor,
    )
    if requeued:
        enqueue_batches(
            runtime.redis, {p: [int(i) for i in ids] for p, ids in requeued.items()}, force=True
        )
    return {p: [int(i) for i in ids] for p, ids in requeued.items()}
