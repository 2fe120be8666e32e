"""Posting status: where a client polls (or waits for) the outcome of its key."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query
from fastapi.responses import JSONResponse

from api.answers import settle, wait_seconds
from api.auth import PostingsRead
from api.dependencies import HubDep, LedgerDep
from api.presenters import API_PREFIX, posting_public
from api.problems import PROBLEM_RESPONSES
from api.schemas import IDEMPOTENCY_KEY, PostingPublic
from ledger_core.rules import check_idempotency_key

router = APIRouter(prefix=f"{API_PREFIX}/postings", tags=["postings"], responses=PROBLEM_RESPONSES)


@router.get("/{idempotency_key}", response_model=PostingPublic)
async def get_posting(
    idempotency_key: Annotated[str, Path(max_length=128, json_schema_extra=IDEMPOTENCY_KEY)],
    caller: PostingsRead,
    ledger: LedgerDep,
    hub: HubDep,
    wait: Annotated[float | None, Query(ge=0, le=30)] = None,
    prefer: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """`{status: queued|posted|rejected|failed}`; 404 for a key never accepted."""
    check_idempotency_key(idempotency_key)
    wait_s = wait_seconds(wait, prefer)
    since = time.monotonic()
    record = await asyncio.to_thread(ledger.get_posting, caller.client, idempotency_key)
    record, _ = await settle(
        record,
        client_id=caller.client,
        wait_s=wait_s,
        ledger=ledger,
        hub=hub,
        since=since,
    )
    return JSONResponse(posting_public(record).model_dump(mode="json"))
