"""Operator views: what every partition has waiting."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter

from api.dependencies import LedgerDep, RuntimeDep
from api.problems import PROBLEM_RESPONSES
from worker.queues import queue_depths

router = APIRouter(prefix="/api/v1/ops", tags=["operations"], responses=PROBLEM_RESPONSES)


@router.get("/partitions")
async def partitions(ledger: LedgerDep, runtime: RuntimeDep) -> dict[str, Any]:
    """Per partition: postings queued in PostgreSQL, the oldest one's age, RQ jobs waiting."""
    lag = await asyncio.to_thread(ledger.partition_lag)
    depths = await asyncio.to_thread(queue_depths, runtime.redis, runtime.settings.partitions)
    rows = [
        {
            "partition": item.partition,
            "queued": item.queued,
            "oldest_age_s": round(item.oldest_age_s, 3),
            "jobs_waiting": depths.get(item.partition, 0),
        }
        for item in lag
    ]
    return {"queued": sum(row["queued"] for row in rows), "partitions": rows}
