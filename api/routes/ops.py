"""Operator views: the deployment's status as JSON, failed postings, and the `/ops` page."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from api.dependencies import LedgerDep, RuntimeDep
from api.problems import PROBLEM_RESPONSES
from runtime.status import backlog, ops_status

router = APIRouter(prefix="/api/v1/ops", tags=["operations"], responses=PROBLEM_RESPONSES)
page_router = APIRouter(tags=["operations"])
OPS_PAGE = Path(__file__).resolve().parent.parent / "static" / "ops.html"


@router.get("/status")
async def status(runtime: RuntimeDep, ledger: LedgerDep) -> dict[str, Any]:
    """Partitions (depth, oldest age, owner, applied/s, refused/s), workers (heartbeat,
    partitions, batches, last error), totals and failed postings: what `ledgerflow ops
    status --json` prints."""
    current = await asyncio.to_thread(ops_status, runtime, ledger)
    return current.to_json()


@router.get("/partitions")
async def partitions(runtime: RuntimeDep, ledger: LedgerDep) -> dict[str, Any]:
    """Per partition: postings queued in PostgreSQL, the oldest one's age, RQ jobs waiting
    (the backlog columns of the status, cheap enough to poll)."""
    current = await asyncio.to_thread(backlog, runtime, ledger)
    return current.to_json()


@page_router.get("/ops", response_class=HTMLResponse, include_in_schema=False)
async def ops_page() -> HTMLResponse:
    """The operator page: it polls /api/v1/ops/status once a second."""
    return HTMLResponse(OPS_PAGE.read_text(encoding="utf-8"))
