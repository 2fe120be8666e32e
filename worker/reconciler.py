"""The reconciler: accepted requests that no queued job carries are enqueued again.

A request is stale when it is still queued in PostgreSQL after `stale_after_s`. If the
newest job waiting in its partition's queue does not reach it (the job was lost with a
killed worker, abandoned, or Redis was wiped), one sweep job is enqueued for the
partition; the sweep applies everything older too. A duplicate sweep finds nothing to do.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from worker.queues import carried_max_ids, enqueue_batches
from worker.runtime import Runtime

log = logging.getLogger(__name__)


def reconcile(runtime: Runtime, partitions: Iterable[int]) -> dict[int, int]:
    """Enqueue sweeps for stale partitions among `partitions`; return {partition: up to id}."""
    wanted = set(partitions)
    stale = {
        partition: newest
        for partition, newest in runtime.ledger.stale_partitions(
            runtime.settings.stale_after_s
        ).items()
        if partition in wanted
    }
    if not stale:
        return {}
    carried = carried_max_ids(runtime.redis, sorted(stale), include_started=False)
    sweeps: dict[int, int] = {
        p: newest for p, newest in stale.items() if carried.get(p, 0) < newest
    }
    if sweeps:
        enqueue_batches(runtime.redis, {p: [newest] for p, newest in sweeps.items()})
        log.warning("reconciler re-enqueued partitions %s", sorted(sweeps))
    return sweeps
