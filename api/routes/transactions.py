"""Transactions: submit one or a batch of postings, and read posted transactions."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from api.answers import posting_answer, server_timing, settle, wait_seconds
from api.auth import LedgerRead, PostingsWrite
from api.dependencies import HubDep, IntakeDep, LedgerDep
from api.parsing import JsonRoute
from api.presenters import API_PREFIX, posting_public, transaction_public
from api.problems import PROBLEM_RESPONSES, error_body, shape_error
from api.schemas import (
    BatchCreate,
    BatchResults,
    CursorQuery,
    PostingPublic,
    TransactionCreate,
    TransactionPage,
    TransactionPublic,
)
from ledger_core.errors import IdempotencyConflict, InputError
from ledger_core.model import AccountId, Posting, TransactionId
from ledger_core.rules import RawEntry, build_posting

router = APIRouter(
    prefix=f"{API_PREFIX}/transactions",
    tags=["transactions"],
    responses=PROBLEM_RESPONSES,
    route_class=JsonRoute,
)

WaitQuery = Annotated[
    float | None,
    Query(ge=0, le=30, description="Seconds to wait for the outcome (0-30)"),
]
PreferHeader = Annotated[
    str | None,
    Header(description="RFC 7240: `wait=N` waits like `?wait=N` (0-30, else 422)"),
]


def to_posting(body: TransactionCreate, amount_max_minor: int) -> Posting:
    return build_posting(
        idempotency_key=body.idempotency_key,
        currency=body.currency,
        entries=[RawEntry(AccountId(e.account_id), e.direction, e.amount) for e in body.entries],
        reference=body.reference,
        description=body.description,
        metadata=body.metadata,
        amount_max_minor=amount_max_minor,
    )


@router.post(
    "",
    status_code=202,
    response_model=PostingPublic,
    responses={201: {"description": "Posted (with wait)", "model": PostingPublic}},
)
async def submit_transaction(
    body: TransactionCreate,
    caller: PostingsWrite,
    intake: IntakeDep,
    hub: HubDep,
    ledger: LedgerDep,
    wait: WaitQuery = None,
    prefer: PreferHeader = None,
) -> JSONResponse:
    arrived_at = time.time()
    wait_s = wait_seconds(wait, prefer)
    client_id = caller.client
    posting = to_posting(body, ledger.entry_amount_max_minor)
    since = time.monotonic()
    [accepted], times = await intake.submit_timed([(client_id, posting)], ledger=caller.ledger)
    record, wakeup = await settle(
        accepted.stored(),
        client_id=client_id,
        wait_s=wait_s,
        ledger=ledger,
        hub=hub,
        since=since,
        posting=posting,
    )
    timing = server_timing(arrived_at, times, wakeup) if wait_s > 0 else None
    return posting_answer(record, replayed=not accepted.created, wait_s=wait_s, timing=timing)


@router.post("/batch", response_model=BatchResults)
async def submit_batch(
    body: BatchCreate, caller: PostingsWrite, intake: IntakeDep, ledger: LedgerDep
) -> JSONResponse:
    """Up to 1,000 postings in one request; one result per item, in order."""
    results: list[dict[str, Any]] = [{} for _ in body.transactions]
    valid: list[tuple[int, Posting]] = []
    for index, raw in enumerate(body.transactions):
        try:
            item = TransactionCreate.model_validate(raw)
            valid.append((index, to_posting(item, ledger.entry_amount_max_minor)))
        except ValidationError as error:
            results[index] = error_body(shape_error(error.errors()), index=index)
        except InputError as error:
            results[index] = error_body(error, index=index)
    requests = [(caller.client, p) for _, p in valid]
    accepted = await intake.submit(requests, ledger=caller.ledger) if valid else []
    for (index, posting), answer in zip(valid, accepted, strict=True):
        try:
            record = answer.stored()
        except IdempotencyConflict as conflict:
            results[index] = error_body(
                conflict, index=index, idempotency_key=posting.idempotency_key
            )
            continue
        results[index] = posting_public(record).model_dump(mode="json", exclude_none=True)
    return JSONResponse({"results": results})


# Only a UUID matches: GET /transactions/batch is then the 405 of the batch route.
@router.get("/{transaction_id:uuid}", response_model=TransactionPublic)
def get_transaction(
    transaction_id: uuid.UUID, caller: LedgerRead, ledger: LedgerDep
) -> TransactionPublic:
    found = ledger.get_transaction(TransactionId(transaction_id), ledger=caller.ledger)
    return transaction_public(found)


@router.get("", response_model=TransactionPage)
def list_transactions(
    caller: LedgerRead,
    ledger: LedgerDep,
    account_id: uuid.UUID | None = None,
    cursor: CursorQuery = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> TransactionPage:
    page = ledger.list_transactions(
        None if account_id is None else AccountId(account_id), cursor, limit, ledger=caller.ledger
    )
    return TransactionPage(
        items=[transaction_public(t) for t in page.items], next_cursor=page.next_cursor
    )
