"""Partition queues: one RQ queue per partition, one RQ job per batch of requests.

A job carries the partition and the ids of the requests it was enqueued for. The worker
applies the partition's queued requests in acceptance order up to at least the newest of
those ids, so a job also sweeps up older requests whose own job was lost, and a duplicate
job finds nothing left to do. Redis is never the only copy: PostgreSQL holds every
accepted request, and the reconciler re-enqueues those no live job carries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from redis import Redis
from rq import Queue
from rq.job import Job
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer

QUEUE_PREFIX = "ledger:p"
JOB_FUNCTION = "worker.jobs.apply_partition"
JOB_TIMEOUT_S = 300
FAILURE_TTL_S = 7 * 24 * 3600


def queue_name(partition: int) -> str:
    return f"{QUEUE_PREFIX}{partition}"


def partition_queue(redis: Redis, partition: int) -> Queue:
    return Queue(queue_name(partition), connection=redis, serializer=JSONSerializer)


def enqueue_batches(redis: Redis, batches: Mapping[int, Sequence[int]]) -> None:
    """Enqueue one job per partition carrying that partition's new request ids."""
    with redis.pipeline() as pipeline:
        for partition, request_ids in batches.items():
            if not request_ids:
                continue
            queue = partition_queue(redis, partition)
            queue.enqueue_many(
                [
                    Queue.prepare_data(
                        JOB_FUNCTION,
                        args=(partition, list(request_ids)),
                        timeout=JOB_TIMEOUT_S,
                        result_ttl=0,
                        failure_ttl=FAILURE_TTL_S,
                    )
                ],
                pipeline=pipeline,
            )
        pipeline.execute()


def _carried_max(jobs: Sequence[Job | None]) -> int:
    newest = 0
    for job in jobs:
        if job is not None and len(job.args) == 2:
            newest = max([newest, *job.args[1]])
    return newest


def carried_max_ids(
    redis: Redis, partitions: Sequence[int], *, include_started: bool = True
) -> dict[int, int]:
    """Per partition, the newest request id a live job will apply up to (0: none).

    Only the newest queued job matters: it sweeps everything older in its partition.
    Started jobs count while their worker's heartbeat keeps them in RQ's registry.
    """
    carried: dict[int, int] = {}
    for partition in partitions:
        queue = partition_queue(redis, partition)
        job_ids: list[str] = []
        if include_started:
            job_ids = list(StartedJobRegistry(queue=queue).get_job_ids())
        last_queued = redis.lindex(queue.key, -1)
        if last_queued is not None:
            job_ids.append(
                last_queued.decode() if isinstance(last_queued, bytes) else str(last_queued)
            )
        jobs = Job.fetch_many(job_ids, connection=redis, serializer=JSONSerializer)
        carried[partition] = _carried_max(jobs)
    return carried


def queue_depths(redis: Redis, partitions: int) -> dict[int, int]:
    with redis.pipeline(transaction=False) as pipeline:
        for partition in range(partitions):
            pipeline.llen(partition_queue(redis, partition).key)
        return dict(enumerate(int(n) for n in pipeline.execute()))
