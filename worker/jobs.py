"""RQ job functions. They take plain data and call the same ledger service as the API.

A job names one partition, but it rings for the worker: `apply_partition` first takes the
waiting jobs and pending markers of every partition the worker owns (one Redis step, see
`runtime.queues.take_waiting`), then drains all of them together, oldest request first,
one PostgreSQL transaction per batch, until a batch comes back short. Batches therefore
hold the postings of many partitions (in acceptance order, so in order per routing
account), and the per-job costs (RQ's bookkeeping, the fence, the transaction's round
trips) are paid once per wake-up instead of once per partition. Requests accepted while
it works find no marker and enqueue the next job. After `BATCHES_PER_JOB_MAX` full
batches, or when the process is asked to stop, it ends after the batch in hand and makes
sure a job follows, so a stop never waits for a deep backlog to drain.

In a worker process every batch is fenced with the leases of all its partitions, checked
in one statement (see `ledger_core.store.leases`): a job for a partition this process does
not own writes nothing and hands the partition back to the queue for its owner; a batch
whose lease was taken over writes nothing, and its partitions get jobs again.

A batch that fails for a reason a retry will not cure is halved until the one request that
breaks it is alone; that request ends `failed` with the error and the drain moves on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from redis.exceptions import RedisError

from ledger_core.errors import LeaseLost, TransientFault
from ledger_core.model import Fence, PostingStatus
from ledger_core.services import AppliedBatch
from runtime.queues import JOB_FUNCTION, enqueue_batches, take_waiting
from runtime.wakeups import Wakeup, publish_outcomes
from worker.context import WorkerContext

log = logging.getLogger(__name__)
BATCHES_PER_JOB_MAX = 20


class _NotOwned(Exception):
    def __init__(self, partitions: frozenset[int]) -> None:
        super().__init__(f"no lease on partitions {sorted(partitions)}")
        self.partitions = partitions


def apply_partition(context: WorkerContext, partition: int, request_ids: list[int]) -> int:
    """A job rang for `partition`: drain every partition this worker owns; return how many
    requests were applied.

    `request_ids` are the requests whose acceptance enqueued this job, kept for operators.
    The waiting jobs and pending markers of the owned partitions are taken first (see
    `runtime.queues.take_waiting`), so one job in hand carries them all: arrivals while
    it works enqueue the next one.
    """
    owned = _owned(context)
    if partition not in owned:
        log.warning("partition %d is not this worker's; handing it back", partition)
        enqueue_batches(context.redis, {partition: request_ids}, force=True)
        return 0
    take_waiting(context.redis, owned)
    try:
        applied, drained = drain_partitions(context, owned)
    except (LeaseLost, _NotOwned) as error:
        lost = error.partitions or frozenset(owned)
        if context.leases is not None:
            for gone in lost:
                context.leases.forget(gone)
        if isinstance(error, LeaseLost):
            context.telemetry.count("batches|fenced")
            context.telemetry.error(f"partitions {sorted(lost)}: {error}")
        log.warning("partitions %s are not this worker's: %s", sorted(lost), error)
        # The lost partitions' jobs go back to their queues for their new owners; the
        # others get one so that this worker goes on with them.
        enqueue_batches(context.redis, {p: [] for p in owned}, force=True)
        return 0
    if not drained:
        # A bound or a stop ended the drain: a job must follow (markers are gone, so a
        # forced one).
        enqueue_batches(context.redis, {partition: request_ids}, force=True)
    return applied


def _owned(context: WorkerContext) -> tuple[int, ...]:
    """The partitions a job drains: the worker's leases, or every partition unfenced."""
    if context.leases is None:
        return tuple(range(context.settings.partitions))
    return tuple(sorted(context.leases.owned()))


def _fences(context: WorkerContext, partitions: tuple[int, ...]) -> list[Fence] | None:
    if context.leases is None:
        return None
    fences = [context.leases.fence(p) for p in partitions]
    missing = frozenset(p for p, fence in zip(partitions, fences, strict=True) if fence is None)
    if missing:
        raise _NotOwned(missing)
    return [fence for fence in fences if fence is not None]


def drain_partitions(context: WorkerContext, partitions: tuple[int, ...]) -> tuple[int, bool]:
    """Apply batches across `partitions`, oldest first, until one comes back short;
    return (applied, whether drained)."""
    batch_max = context.settings.apply_batch_max
    limit = batch_max
    applied = 0
    full_batches = 0
    while full_batches < BATCHES_PER_JOB_MAX and not context.stopping.is_set():
        fences = _fences(context, partitions)
        started = time.perf_counter()
        began_at = time.time()
        try:
            batch = context.ledger.apply_next_batch(partitions, limit, fences)
        except (TransientFault, LeaseLost):
            raise
        except Exception as error:  # noqa: BLE001 - a poison batch must not stop its partitions
            limit = _isolate(context, partitions, limit, error, fences)
            continue
        elapsed = time.perf_counter() - started
        if batch.postings:
            _announce(context, batch, elapsed, applied=(began_at, began_at + elapsed))
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


def _announce(
    context: WorkerContext,
    batch: AppliedBatch,
    elapsed: float,
    *,
    applied: tuple[float, float],
) -> None:
    """Wake waiters and count the batch; the batch is committed whatever Redis says.
    `applied`: when the batch's transaction began and committed (wall clock)."""
    partition_of = {queued.request_id: queued.partition for queued in batch.postings}
    try:
        with context.redis.pipeline(transaction=False) as pipeline:
            publish_outcomes(pipeline, wakeups(batch), applied=applied)
            context.telemetry.record_batch(pipeline, batch.outcomes, partition_of, elapsed)
            pipeline.execute()
    except RedisError as error:
        log.warning("batch of %s committed; Redis missed it: %r", batch.partitions, error)


def _isolate(
    context: WorkerContext,
    partitions: tuple[int, ...],
    limit: int,
    error: Exception,
    fences: list[Fence] | None,
) -> int:
    """Halve the batch; once alone, the breaking request ends `failed`. Returns the new limit."""
    context.telemetry.error(f"partitions {list(partitions)}: {error!r}")
    if limit > 1:
        log.warning("batch of %d in %s failed, halving: %r", limit, partitions, error)
        return limit // 2
    failed = context.ledger.fail_oldest(partitions, "apply_failed", repr(error)[:1000], fences)
    if failed is not None:
        context.telemetry.count("postings|failed|apply_failed")
        publish_outcomes(context.redis, [Wakeup(failed, PostingStatus.FAILED)])
    return context.settings.apply_batch_max


# The job functions a worker runs, by the name RQ carries (`runtime.queues.JOB_FUNCTION`);
# nothing else placed in a queue is run (see `worker.context`).
JOBS: dict[str, Callable[..., int]] = {JOB_FUNCTION: apply_partition}
