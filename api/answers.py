"""How a posting's state becomes an HTTP answer, for fresh requests, replays and waits.

queued -> 202 with the status URL; posted -> 201 with the transaction; rejected -> 422
problem whose `code` names the refusal; failed -> 202 with the error (operators can
replay it). `wait` seconds, from `?wait=` or `Prefer: wait=`, hold the answer until the
posting leaves `queued`, without holding a thread.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any

from fastapi.responses import JSONResponse

from api.intake import IntakeTimes
from api.metrics import WAITS
from api.presenters import posting_public, status_url
from api.problems import PROBLEM_MEDIA_TYPE, problem_body
from api.waiting import OutcomeHub
from ledger_core.errors import REFUSALS, InvalidRequest, quoted
from ledger_core.model import (
    ClientId,
    Posting,
    PostingRecord,
    PostingStatus,
    Transaction,
    TransactionId,
)
from ledger_core.services import Ledger
from runtime.wakeups import Wakeup

WAIT_S_MAX = 30.0
# The `wait` preference of a Prefer header, its value quoted or not (RFC 7240).
_PREFER_WAIT = re.compile(r'(?:^|[;,\s])wait\s*=\s*("[^"]*"|[^,;\s]*)', re.IGNORECASE)
_SECONDS = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,9})?")


def wait_seconds(query_wait: float | None, prefer: str | None) -> float:
    """The wait asked for: the query parameter first, then `Prefer: wait=N`. A wait outside
    0-30 s is refused in either (422 `invalid_request`), not shortened: a client that asked
    for more would otherwise be answered 202 sooner than it planned for."""
    if query_wait is not None:
        return query_wait
    if prefer:
        match = _PREFER_WAIT.search(prefer)
        if match:
            value = match.group(1).strip('"')
            if not _SECONDS.fullmatch(value) or float(value) > WAIT_S_MAX:
                raise InvalidRequest(
                    f"Prefer: wait={quoted(value)} is not a number of seconds from 0 to 30"
                )
            return float(value)
    return 0.0


async def settle(
    record: PostingRecord,
    *,
    client_id: ClientId,
    wait_s: float,
    ledger: Ledger,
    hub: OutcomeHub,
    since: float,
    posting: Posting | None = None,
) -> tuple[PostingRecord, Wakeup | None]:
    """Wait (if asked) for a queued posting, and load the transaction of a posted one.

    `since` is `time.monotonic()` taken before `record` was committed or read (see
    `OutcomeHub.wait`). With the `posting` that was accepted, a published outcome is
    answered as is; otherwise the record is read back from PostgreSQL. Returns the record
    and the wake-up that ended the wait, if one did.
    """
    wakeup = None
    if record.status is PostingStatus.QUEUED and wait_s > 0:
        wakeup = await hub.wait(record.request_id, wait_s, since)
        WAITS.labels("finished" if wakeup is not None else "timed_out").inc()
        if wakeup is None:
            return record, None
        if posting is not None:
            finished = finished_record(record, posting, wakeup)
            if finished is not None:
                return finished, wakeup
    elif record.status is not PostingStatus.POSTED or record.transaction is not None:
        return record, None
    return await asyncio.to_thread(ledger.get_posting, client_id, record.idempotency_key), wakeup


def server_timing(
    arrived_at: float, times: IntakeTimes | None, wakeup: Wakeup | None
) -> str | None:
    """A waited posting's stages as a `Server-Timing` header (milliseconds): intake (from
    the handler to the group commit), enqueue, dequeue (until its batch began), apply (the
    batch's transaction), wakeup (until this process heard of it) and answer. Wall clocks
    of the API and the worker: on one host, or hosts whose clocks agree; a stage that
    would come out negative across hosts is shown as 0."""
    if times is None or wakeup is None or wakeup.applied is None or wakeup.received_at is None:
        return None
    began, committed = wakeup.applied
    marks = (
        ("intake", arrived_at, times.committed_at),
        ("enqueue", times.committed_at, times.enqueued_at),
        ("dequeue", times.enqueued_at, began),
        ("apply", began, committed),
        ("wakeup", committed, wakeup.received_at),
        ("answer", wakeup.received_at, time.time()),
    )
    return ", ".join(
        f"{name};dur={max(0.0, (end - start) * 1000):.2f}" for name, start, end in marks
    )


def finished_record(
    record: PostingRecord, posting: Posting, wakeup: Wakeup
) -> PostingRecord | None:
    """The record a wake-up implies for the queued `record` of `posting`, if it says enough.

    The stored document of a request is this posting's canonical form (its body hash
    matched at intake), so the transaction is the posting's fields with the id and posting
    time the worker published: what reading it back would return.
    """
    if wakeup.status is PostingStatus.POSTED and wakeup.transaction_id and wakeup.posted_at:
        transaction = Transaction(
            id=TransactionId(uuid.UUID(wakeup.transaction_id)),
            request_id=record.request_id,
            idempotency_key=posting.idempotency_key,
            currency=posting.currency,
            entries=posting.entries,
            reference=posting.reference,
            description=posting.description,
            metadata=dict(posting.metadata),
            posted_at=datetime.fromisoformat(wakeup.posted_at),
        )
        return replace(record, status=PostingStatus.POSTED, transaction=transaction)
    if wakeup.status is PostingStatus.REJECTED and wakeup.code is not None:
        return replace(
            record,
            status=PostingStatus.REJECTED,
            error_code=wakeup.code,
            error_detail=wakeup.detail,
        )
    return None


def posting_answer(
    record: PostingRecord, *, replayed: bool, wait_s: float = 0, timing: str | None = None
) -> JSONResponse:
    headers = {"Location": status_url(record.idempotency_key)}
    if timing is not None:
        headers["Server-Timing"] = timing
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    if wait_s > 0:
        headers["Preference-Applied"] = f"wait={wait_s:g}"
    if record.status is PostingStatus.REJECTED:
        return JSONResponse(
            rejection_body(record), status_code=422, media_type=PROBLEM_MEDIA_TYPE, headers=headers
        )
    status_code = 201 if record.status is PostingStatus.POSTED else 202
    return JSONResponse(
        posting_public(record).model_dump(mode="json"), status_code=status_code, headers=headers
    )


def rejection_body(record: PostingRecord) -> dict[str, Any]:
    code = record.error_code or "refused"
    refusal = REFUSALS.get(code)
    return problem_body(
        code=code,
        title=refusal.title if refusal else "Posting refused",
        status=422,
        detail=record.error_detail or "the ledger refused this posting",
        idempotency_key=record.idempotency_key,
        posting_status=record.status.value,
        status_url=status_url(record.idempotency_key),
    )
