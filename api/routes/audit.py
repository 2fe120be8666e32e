"""The audit trail (every change made with a key or by an operator) and operator retries."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from api.auth import Ops
from api.dependencies import LedgerDep, RuntimeDep
from api.parsing import JsonRoute
from api.presenters import API_PREFIX
from api.problems import PROBLEM_RESPONSES
from api.schemas import AuditEventPage, AuditEventPublic, CursorQuery, RetryRequest, RetryResult
from ledger_core.access import AuditTrail
from ledger_core.errors import InvalidRequest
from runtime.status import retry_failed

router = APIRouter(
    prefix=API_PREFIX, tags=["operations"], responses=PROBLEM_RESPONSES, route_class=JsonRoute
)


@router.get("/audit-events", response_model=AuditEventPage)
def list_audit_events(
    _caller: Ops,
    runtime: RuntimeDep,
    cursor: CursorQuery = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditEventPage:
    """Accounts created or changed, keys created or revoked, postings retried: who (key id,
    client, ledger), what, on which target, when; oldest first, `limit` per page."""
    page = AuditTrail(runtime.database).page(cursor, limit)
    items = [AuditEventPublic.model_validate(event, from_attributes=True) for event in page.items]
    return AuditEventPage(items=items, next_cursor=page.next_cursor)


@router.post("/ops/retry", response_model=RetryResult)
async def retry_failed_postings(
    body: RetryRequest, caller: Ops, runtime: RuntimeDep, ledger: LedgerDep
) -> JSONResponse:
    """Queue failed postings again once their cause is fixed (`ledgerflow ops retry` over
    HTTP); they apply in order, and the audit trail records the key that asked."""
    if bool(body.idempotency_keys) == body.all:
        raise InvalidRequest("name idempotency_keys or set all (not both)")
    keys = None if body.all else [(body.client, key) for key in body.idempotency_keys]
    requeued = await asyncio.to_thread(retry_failed, runtime, ledger, keys, actor=caller.actor)
    result = RetryResult(
        requeued=sum(len(ids) for ids in requeued.values()),
        partitions={str(p): ids for p, ids in requeued.items()},
    )
    return JSONResponse(result.model_dump())
