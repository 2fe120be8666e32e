"""RQ job functions. They take plain data and call the same ledger service as the API.

`apply_partition` drains the partition in acceptance order, one PostgreSQL transaction per
batch, until a batch comes back short; then it deletes the partition's pending marker (see
`worker.queues`) and drains once more, so requests accepted while it worked ride on this
job instead of enqueueing their own. After `BATCHES_PER_JOB_MAX` full batches it stops and
makes sure a job follows, so one deep partition cannot hold a worker away from its other
partitions.

A batch that fails for a reason a retry will not cure is halved until the one request that
breaks it is alone; that request ends `failed` with the error and the partition moves on.
"""

from __future__ import annotations

import logging

from ledger_core.errors import TransientFault
from ledger_core.model import PostingStatus
from worker.outcomes import publish_outcomes
from worker.queues import enqueue_batches, pending_key
from worker.runtime import Runtime, get_runtime

log = logging.getLogger(__name__)
BATCHES_PER_JOB_MAX = 20


def apply_partition(partition: int, request_ids: list[int]) -> int:
    """Drain partition `partition`; return how many requests were applied.

    `request_ids` are the requests whose acceptance enqueued this job, kept for operators;
    the job applies whatever the partition holds.
    """
    runtime = get_runtime()
    applied, drained = drain_partition(runtime, partition)
    if not drained:
        # The marker stands, so nobody else enqueues: the successor must be forced in.
        enqueue_batches(runtime.redis, {partition: request_ids}, force=True)
        return applied
    # Requests accepted while the marker stood enqueued nothing: one more drain after
    # deleting it sees all of them; any accepted later find no marker and enqueue a job.
    runtime.redis.delete(pending_key(partition))
    more, drained = drain_partition(runtime, partition)
    if not drained:
        enqueue_batches(runtime.redis, {partition: request_ids})
    return applied + more


def drain_partition(runtime: Runtime, partition: int) -> tuple[int, bool]:
    """Apply batches until one comes back short; return (applied, whether drained)."""
    batches_max = BATCHES_PER_JOB_MAX
    batch_max = runtime.settings.apply_batch_max
    limit = batch_max
    applied = 0
    full_batches = 0
    while full_batches < batches_max:
        try:
            batch = runtime.ledger.apply_next_batch(partition, limit)
        except TransientFault:
            raise
        except Exception as error:  # noqa: BLE001 - a poison batch must not stop its partition
            limit = _isolate(runtime, partition, limit, error)
            continue
        publish_outcomes(
            runtime.redis,
            [
                (o.request_id, (PostingStatus.POSTED if o.posted else PostingStatus.REJECTED).value)
                for o in batch.outcomes
            ],
        )
        applied += len(batch.postings)
        if len(batch.postings) < limit:
            return applied, True
        full_batches += 1
        limit = min(batch_max, limit * 2)
    return applied, False


def _isolate(runtime: Runtime, partition: int, limit: int, error: Exception) -> int:
    """Halve the batch; once alone, the breaking request ends `failed`. Returns the new limit."""
    if limit > 1:
        log.warning("batch of %d in partition %d failed, halving: %r", limit, partition, error)
        return limit // 2
    failed = runtime.ledger.fail_oldest(partition, "apply_failed", repr(error)[:1000])
    if failed is not None:
        publish_outcomes(runtime.redis, [(failed, PostingStatus.FAILED.value)])
    return runtime.settings.apply_batch_max
