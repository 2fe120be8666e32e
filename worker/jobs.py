"""RQ job functions. They take plain data and call the same ledger service as the API.

`apply_partition` drains the partition in acceptance order, one PostgreSQL transaction per
batch, until a batch comes back short; then it deletes the partition's pending marker (see
`runtime.queues`) and drains once more, so requests accepted while it worked ride on this
job instead of enqueueing their own. After `BATCHES_PER_JOB_MAX` full batches, or when the
process is asked to stop, it ends after the batch in hand and makes sure a job follows, so
one deep partition cannot hold a worker away from its other partitions and a stop never
waits for a deep partition to drain.

In a worker process every batch is fenced with the partition's lease (see
`ledger_core.store.leases`): a job for a partition this process does not own, or no longer
owns, writes nothing and hands the partition back to the queue for its owner.

A batch that fails for a reason a retry will not cure is halved until the one request that
breaks it is alone; that request ends `failed` with the error and the partition moves on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from redis.exceptions import RedisError

from ledger_core.errors import LeaseLost, TransientFault
from ledger_core.model import Fence, PostingStatus
from ledger_core.services import AppliedBatch
from runtime.queues import JOB_FUNCTION, enqueue_batches, pending_key
from runtime.wakeups import Wakeup, publish_outcomes
from worker.context import WorkerContext

log = logging.getLogger(__name__)
BATCHES_PER_JOB_MAX = 20


class _NotOwned(Exception):
    pass


def apply_partition(context: WorkerContext, partition: int, request_ids: list[int]) -> int:
    """Drain partition `partition`; return how many requests were applied.

    `request_ids` are the requests whose acceptance enqueued this job, kept for operators;
    the job applies whatever the partition holds.
    """
    try:
        applied, drained = drain_partition(context, partition)
        if drained:
            # Requests accepted while the marker stood enqueued nothing: one more drain
            # after deleting it sees all of them; any accepted later find no marker and
            # enqueue a job of their own.
            context.redis.delete(pending_key(partition))
            if context.ledger.has_queued(partition):
                more, drained = drain_partition(context, partition)
                applied += more
            if not drained:
                enqueue_batches(context.redis, {partition: request_ids})
        else:
            # The marker stands, so nobody else enqueues: the successor must be forced in.
            enqueue_batches(context.redis, {partition: request_ids}, force=True)
    except (LeaseLost, _NotOwned) as error:
        if context.leases is not None:
            context.leases.forget(partition)
        if isinstance(error, LeaseLost):
            context.telemetry.count("batches|fenced")
            context.telemetry.error(f"partition {partition}: {error}")
        log.warning("partition %d is not this worker's: %s; handing it back", partition, error)
        enqueue_batches(context.redis, {partition: request_ids}, force=True)
        return 0
    return applied


def _fence(context: WorkerContext, partition: int) -> Fence | None:
    if context.leases is None:
        return None
    fence = context.leases.fence(partition)
    if fence is None:
        raise _NotOwned(f"no lease on partition {partition}")
    return fence


def drain_partition(context: WorkerContext, partition: int) -> tuple[int, bool]:
    """Apply batches until one comes back short; return (applied, whether drained)."""
    batch_max = context.settings.apply_batch_max
    limit = batch_max
    applied = 0
    full_batches = 0
    while full_batches < BATCHES_PER_JOB_MAX and not context.stopping.is_set():
        fence = _fence(context, partition)
        started = time.perf_counter()
        try:
            batch = context.ledger.apply_next_batch(partition, limit, fence)
        except (TransientFault, LeaseLost):
            raise
        except Exception as error:  # noqa: BLE001 - a poison batch must not stop its partition
            limit = _isolate(context, partition, limit, error, fence)
            continue
        elapsed = time.perf_counter() - started
        if batch.postings:
            _announce(context, partition, batch, elapsed)
        applied += len(batch.postings)
        if len(batch.postings) < limit:
            return applied, True
        full_batches += 1
        limit = min(batch_max, limit * 2)
    return applied, False


def wakeups(batch: AppliedBatch) -> list[Wakeup]:
    """What the batch's wake-up says of each request: posted with its transaction, or refused."""
    ids = batch.posted.transaction_ids
    posted_at = None if batch.posted.posted_at is None else batch.posted.posted_at.isoformat()
    return [
        Wakeup(o.request_id, PostingStatus.POSTED, ids.get(o.request_id), posted_at)
        if o.posted
        else Wakeup(o.request_id, PostingStatus.REJECTED, code=o.code, detail=o.detail)
        for o in batch.outcomes
    ]


def _announce(context: WorkerContext, partition: int, batch: AppliedBatch, elapsed: float) -> None:
    """Wake waiters and count the batch; the batch is committed whatever Redis says."""
    try:
        with context.redis.pipeline(transaction=False) as pipeline:
            publish_outcomes(pipeline, wakeups(batch))
            context.telemetry.record_batch(pipeline, partition, batch.outcomes, elapsed)
            pipeline.execute()
    except RedisError as error:
        log.warning("batch of partition %d committed; Redis missed it: %r", partition, error)


def _isolate(
    context: WorkerContext, partition: int, limit: int, error: Exception, fence: Fence | None
) -> int:
    """Halve the batch; once alone, the breaking request ends `failed`. Returns the new limit."""
    context.telemetry.error(f"partition {partition}: {error!r}")
    if limit > 1:
        log.warning("batch of %d in partition %d failed, halving: %r", limit, partition, error)
        return limit // 2
    failed = context.ledger.fail_oldest(partition, "apply_failed", repr(error)[:1000], fence)
    if failed is not None:
        context.telemetry.count("postings|failed|apply_failed")
        publish_outcomes(context.redis, [Wakeup(failed, PostingStatus.FAILED)])
    return context.settings.apply_batch_max


# The job functions a worker runs, by the name RQ carries (`runtime.queues.JOB_FUNCTION`);
# nothing else placed in a queue is run (see `worker.context`).
JOBS: dict[str, Callable[..., int]] = {JOB_FUNCTION: apply_partition}
