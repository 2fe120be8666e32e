"""Partition queues: one RQ queue per partition; a job rings for the worker that owns it.

A job says "apply partition p"; the worker that takes it drains every partition it owns,
in acceptance order, a batch per transaction, until nothing is queued (or a bound of
batches, after which it makes sure another job follows). So a duplicate job finds nothing
to do, and a job also applies older requests whose own job was lost.

Enqueues are coalesced: a partition gets a new job only when no job of it is waiting.
The "pending" marker of a partition is set (SET NX) by whoever enqueues. A job, before
it reads PostgreSQL, takes the markers and waiting jobs of all its worker's partitions in
one atomic step (`take_waiting`). A request committed before that step is seen by the
drain that follows; one whose enqueue comes after finds no marker and enqueues a job of
its own. The marker expires, so a marker orphaned by a crash costs at most its time to
live (the reconciler covers that gap too).

Redis is never the only copy: PostgreSQL holds every accepted request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from redis import Redis
from rq import Queue
from rq.job import Job
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer

QUEUE_PREFIX = "ledger:p"
JOB_FUNCTION = "worker.jobs.apply_partition"
JOB_TIMEOUT_S = 300
FAILURE_TTL_S = 7 * 24 * 3600
PENDING_TTL_S = 30


def queue_name(partition: int) -> str:
    return f"{QUEUE_PREFIX}{partition}"


def pending_key(partition: int) -> str:
    return f"ledgerflow:pending:p{partition}"


def partition_queue(redis: Redis, partition: int) -> Queue:
    return Queue(queue_name(partition), connection=redis, serializer=JSONSerializer)


def enqueue_batches(
    redis: Redis, batches: Mapping[int, Sequence[int]], *, force: bool = False
) -> list[int]:
    """Make sure a job will drain each partition of `batches`; return those enqueued.

    Without `force`, a partition whose pending marker stands already has a job waiting
    and gets none, nor does one with no new request ids. The job's arguments name the new
    request ids for operators to read.
    """
    wanted = [p for p, request_ids in batches.items() if request_ids or force]
    if not wanted:
        return []
    if force:
        chosen = wanted
    else:
        with redis.pipeline(transaction=False) as pipeline:
            for partition in wanted:
                pipeline.set(pending_key(partition), 1, nx=True, ex=PENDING_TTL_S)
            chosen = [p for p, was_set in zip(wanted, pipeline.execute(), strict=True) if was_set]
    if not chosen:
        return []
    with redis.pipeline() as pipeline:
        for partition in chosen:
            partition_queue(redis, partition).enqueue_many(
                [
                    Queue.prepare_data(
                        JOB_FUNCTION,
                        args=(partition, list(batches[partition])),
                        timeout=JOB_TIMEOUT_S,
                        result_ttl=0,
                        failure_ttl=FAILURE_TTL_S,
                    )
                ],
                pipeline=pipeline,
            )
        pipeline.execute()
    return chosen


# Delete the pending markers and the waiting jobs (list and job hashes) of the given
# partitions in one atomic step. KEYS: the pending markers, then the queue lists; ARGV[1]:
# the job key prefix, ARGV[2]: how many of KEYS are markers. Returns the jobs deleted.
_CLEAR_WAITING = """
local cleared = 0
local markers = tonumber(ARGV[2])
for i = 1, markers do redis.call('DEL', KEYS[i]) end
for i = markers + 1, #KEYS do
    local ids = redis.call('LRANGE', KEYS[i], 0, -1)
    for _, id in ipairs(ids) do redis.call('DEL', ARGV[1] .. id) end
    cleared = cleared + #ids
    redis.call('DEL', KEYS[i])
end
return cleared
"""


def take_waiting(redis: Redis, partitions: Sequence[int]) -> int:
    """Claim every waiting job of `partitions` for a drain about to start; return how many.

    The drain that follows reads PostgreSQL after this step, so it sees every request
    whose job (or pending marker) this removed: those were enqueued after their intake
    commit. A request committed later finds no marker and enqueues a job of its own, which
    rings for the next drain. One job in hand therefore stands for all the partitions a
    worker owns, instead of one job (with RQ's bookkeeping) per partition per wake-up.
    """
    if not partitions:
        return 0
    keys = [pending_key(p) for p in partitions] + [
        partition_queue(redis, p).key for p in partitions
    ]
    cleared = redis.eval(
        _CLEAR_WAITING, len(keys), *keys, Job.redis_job_namespace_prefix, len(partitions)
    )
    return int(cleared)


def partitions_with_jobs(
    redis: Redis, partitions: Iterable[int], *, include_started: bool = True
) -> set[int]:
    """Partitions with a job waiting, or (with `include_started`) one being worked on.

    A started job counts while its worker's heartbeat keeps it in RQ's registry.
    """
    covered: set[int] = set()
    for partition in partitions:
        queue = partition_queue(redis, partition)
        if redis.llen(queue.key) or (
            include_started and StartedJobRegistry(queue=queue).get_job_ids()
        ):
            covered.add(partition)
    return covered


def queue_depths(redis: Redis, partitions: int) -> dict[int, int]:
    with redis.pipeline(transaction=False) as pipeline:
        for partition in range(partitions):
            pipeline.llen(partition_queue(redis, partition).key)
        return dict(enumerate(int(n) for n in pipeline.execute()))
