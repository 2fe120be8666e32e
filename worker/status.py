"""The operator's view of a deployment, one JSON document for the CLI, the API and `/ops`.

Per partition: postings queued and the age of the oldest (PostgreSQL, the record), RQ jobs
waiting (Redis), the lease owner and how long since it renewed, applied and refused per
second over the last ten seconds. Per worker: heartbeat age, partitions, pinned, batches,
postings applied, last error. Totals, and the failed postings waiting for an operator.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ledger_core.model import ClientId, FailedPosting
from ledger_core.ownership import Ownership
from worker.queues import enqueue_batches, queue_depths
from worker.runtime import Runtime
from worker.telemetry import read_rates

RATE_WINDOW_S = 10


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


def cluster_status(runtime: Runtime) -> dict[str, Any]:
    ownership = ownership_of(runtime)
    lag = runtime.ledger.partition_lag()
    leases = {lease.partition: lease for lease in ownership.leases()}
    workers = ownership.workers()
    depths = queue_depths(runtime.redis, runtime.settings.partitions)
    rates = read_rates(runtime.redis, RATE_WINDOW_S)
    partitions: list[dict[str, Any]] = []
    for item in lag:
        lease = leases.get(item.partition)
        applied_s, refused_s = rates.get(item.partition, (0.0, 0.0))
        partitions.append(
            {
                "partition": item.partition,
                "queued": item.queued,
                "oldest_age_s": round(item.oldest_age_s, 3),
                "jobs_waiting": depths.get(item.partition, 0),
                "owner": lease.owner if lease is not None and lease.live else None,
                # The last holder even when its lease expired: who lost the partition.
                "lease_owner": lease.owner if lease is not None else None,
                "lease_age_s": (
                    round(lease.age_s, 3)
                    if lease is not None and lease.live and lease.age_s is not None
                    else None
                ),
                "lease_token": lease.token if lease is not None else 0,
                "applied_per_s": round(applied_s, 1),
                "refused_per_s": round(refused_s, 1),
            }
        )
    failed = runtime.ledger.failed_postings(limit=100)
    return {
        "partitions": partitions,
        "workers": [
            {
                "name": w.name,
                "live": w.live,
                "heartbeat_age_s": round(w.heartbeat_age_s, 3),
                "started_age_s": round(w.started_age_s, 3),
                "partitions": w.partitions,
                "pinned": w.pinned,
                "batches": w.batches,
                "applied": w.applied,
                "last_error": w.last_error,
                "last_error_age_s": (
                    None if w.last_error_age_s is None else round(w.last_error_age_s, 3)
                ),
            }
            for w in workers
        ],
        "totals": {
            "queued": sum(p["queued"] for p in partitions),
            "oldest_age_s": max((p["oldest_age_s"] for p in partitions), default=0.0),
            "applied_per_s": round(sum(p["applied_per_s"] for p in partitions), 1),
            "refused_per_s": round(sum(p["refused_per_s"] for p in partitions), 1),
            "unowned_partitions": sum(1 for p in partitions if p["owner"] is None),
            "live_workers": sum(1 for w in workers if w.live),
            "failed": runtime.ledger.count_failed(),
        },
        "failed": [failed_public(f) for f in failed],
        # Every applied posting leaves dead row versions; without autovacuum the queue
        # slows down as they pile up (see docs/OPERATIONS.md).
        "database": {"autovacuum": runtime.ledger.autovacuum_on()},
        "rate_window_s": RATE_WINDOW_S,
        "lease_ttl_s": runtime.settings.lease_ttl_s,
        "lag_max_s": runtime.settings.lag_max_s,
        "queued_max": runtime.settings.queued_max,
        "generated_at": datetime.now(UTC).isoformat(),
    }


def retry_failed(
    runtime: Runtime, keys: list[tuple[str | None, str]] | None
) -> dict[int, list[int]]:
    """Queue failed postings again (every one when `keys` is None) and enqueue their jobs."""
    requeued = runtime.ledger.requeue_failed(
        None if keys is None else [(None if c is None else ClientId(c), k) for c, k in keys]
    )
    if requeued:
        enqueue_batches(
            runtime.redis, {p: [int(i) for i in ids] for p, ids in requeued.items()}, force=True
        )
    return {p: [int(i) for i in ids] for p, ids in requeued.items()}
