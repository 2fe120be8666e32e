"""RQ job functions. They take plain data and call the same ledger service as the API.

`apply_partition` drains a partition in acceptance order, one PostgreSQL transaction per
batch, until the newest request the job was enqueued for has been applied. A batch that
fails for a reason a retry will not cure is halved until the one request that breaks it is
alone; that request ends `failed` with the error and the partition moves on.
"""

from __future__ import annotations

import logging

from ledger_core.errors import TransientFault
from ledger_core.model import PostingStatus
from worker.outcomes import publish_outcomes
from worker.runtime import Runtime, get_runtime

log = logging.getLogger(__name__)


def apply_partition(partition: int, request_ids: list[int]) -> int:
    """Apply partition `partition` up to the newest of `request_ids`; return how many applied."""
    return drain_partition(get_runtime(), partition, up_to=max(request_ids))


def drain_partition(runtime: Runtime, partition: int, *, up_to: int) -> int:
    batch_max = runtime.settings.apply_batch_max
    limit = batch_max
    applied = 0
    while True:
        try:
            batch = runtime.ledger.apply_next_batch(partition, limit)
        except TransientFault:
            raise
        except Exception as error:  # noqa: BLE001 - a poison batch must not stop its partition
            if limit > 1:
                log.warning(
                    "batch of %d in partition %d failed, halving: %r", limit, partition, error
                )
                limit //= 2
                continue
            failed = runtime.ledger.fail_oldest(partition, "apply_failed", repr(error)[:1000])
            if failed is not None:
                publish_outcomes(runtime.redis, [(failed, PostingStatus.FAILED.value)])
            limit = batch_max
            continue
        publish_outcomes(
            runtime.redis,
            [
                (o.request_id, (PostingStatus.POSTED if o.posted else PostingStatus.REJECTED).value)
                for o in batch.outcomes
            ],
        )
        applied += len(batch.postings)
        last = batch.last_request_id
        if last is None or last >= up_to or len(batch.postings) < limit:
            return applied
        limit = min(batch_max, limit * 2)
