"""Operator views: the deployment's status as JSON, failed postings, and the `/ops` page."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from api.auth import AUTH_OFF_WARNING, Ops
from api.dependencies import LedgerDep, RuntimeDep
from api.problems import PROBLEM_RESPONSES
from runtime.status import backlog, ops_status

router = APIRouter(prefix="/api/v1/ops", tags=["operations"], responses=PROBLEM_RESPONSES)
page_router = APIRouter(tags=["operations"])
OPS_PAGE = Path(__file__).resolve().parent.parent / "static" / "ops.html"
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline';"
    " style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none';"
    " form-action 'none'",
    # X-Content-Type-Options: nosniff comes with every answer (api/edge.py).
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@router.get("/status")
async def status(_caller: Ops, runtime: RuntimeDep, ledger: LedgerDep) -> dict[str, Any]:
    """Partitions (depth, oldest age, owner, applied/s, refused/s), workers (heartbeat,
    partitions, batches, last error), totals and failed postings: what `ledgerflow ops
    status --json` prints."""
    current = await asyncio.to_thread(ops_status, runtime, ledger)
    return current.to_json()


@router.get("/partitions")
async def partitions(_caller: Ops, runtime: RuntimeDep, ledger: LedgerDep) -> dict[str, Any]:
    """Per partition: postings queued in PostgreSQL, the oldest one's age, RQ jobs waiting
    (the backlog columns of the status, cheap enough to poll)."""
    current = await asyncio.to_thread(backlog, runtime, ledger)
    return current.to_json()


@page_router.get("/ops", response_class=HTMLResponse, include_in_schema=False)
async def ops_page(_caller: Ops, runtime: RuntimeDep) -> HTMLResponse:
    """The operator page: it polls /api/v1/ops/status once a second. A browser without
    the key is asked for it (HTTP Basic, the key as the user name); it then sends it
    with the page's own requests. Served with a policy that allows only its own script,
    no framing and no content sniffing."""
    page = OPS_PAGE.read_text(encoding="utf-8")
    if runtime.settings.auth == "off":
        opened = page.index(">", page.index("<body")) + 1
        warning = f'<p class="warning" role="alert">{AUTH_OFF_WARNING}</p>'
        page = page[:opened] + warning + page[opened:]
    return HTMLResponse(page, headers=PAGE_HEADERS)
