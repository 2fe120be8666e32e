"""Operator views: the deployment's status as JSON, failed postings, and the `/ops` page."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from api.dependencies import LedgerDep, RuntimeDep
from api.problems import PROBLEM_RESPONSES
from worker.queues import queue_depths
from worker.status import cluster_status

router = APIRouter(prefix="/api/v1/ops", tags=["operations"], responses=PROBLEM_RESPONSES)
page_router = APIRouter(tags=["operations"])
OPS_PAGE = Path(__file__).resolve().parent.parent / "static" / "ops.html"


@router.get("/status")
async def status(runtime: RuntimeDep) -> dict[str, Any]:
    """Partitions (depth, oldest age, owner, applied/s, refused/s), workers (heartbeat,
    partitions, batches, last error), totals and failed postings: what `ledgerflow ops
    status --json` prints."""
    return await asyncio.to_thread(cluster_status, runtime)


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


@page_router.get("/ops", response_class=HTMLResponse, include_in_schema=False)
async def ops_page() -> HTMLResponse:
    """The operator page: it polls /api/v1/ops/status once a second."""
    return HTMLResponse(OPS_PAGE.read_text(encoding="utf-8"))
