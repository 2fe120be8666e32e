"""The reconciler: accepted requests that no waiting job will reach are enqueued again.

A request is stale when it is still queued in PostgreSQL after `stale_after_s`. If its
partition has no job waiting in its queue (the job was lost with a killed worker,
abandoned, or Redis was wiped), one job is enqueued for the partition, bypassing the
pending marker, which may be an orphan of the lost job. A job in progress is not trusted
here: a duplicate job costs one empty read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from runtime.queues import enqueue_batches, partitions_with_jobs
from worker.context import WorkerContext

log = logging.getLogger(__name__)


def reconcile(context: WorkerContext, partitions: Iterable[int]) -> dict[int, int]:
    """Enqueue jobs for stale partitions among `partitions`; return {partition: newest id}."""
    wanted = set(partitions)
    stale = {
        partition: newest
        for partition, newest in context.ledger.stale_partitions(
            context.settings.stale_after_s
        ).items()
        if partition in wanted
    }
    if not stale:
        return {}
    waiting = partitions_with_jobs(context.redis, sorted(stale), include_started=False)
    lost: dict[int, int] = {p: newest for p, newest in stale.items() if p not in waiting}
    if lost:
        enqueue_batches(context.redis, {p: [newest] for p, newest in lost.items()}, force=True)
        log.warning("reconciler re-enqueued partitions %s", sorted(lost))
    return lost
