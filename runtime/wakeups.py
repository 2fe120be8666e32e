"""Wake-ups: after a batch commits, the worker publishes each request's new status.

PostgreSQL stays the record; a waiter that misses a message still finds the outcome there
(the API's sweep, or when its wait runs out). A posted request's wake-up also carries its
transaction's id and posting time, and a rejected one its refusal, so an API process that
holds the posting it accepted can answer a waiting client without reading it back.

Message: a JSON object `{"outcomes": [...], "applied": [started, committed]}`, one item per
request in `outcomes`: `[id, "posted", transaction_id, posted_at]`, `[id, "rejected", code,
detail]` or `[id, status]` when nothing more is known. `applied`, when present, is when the
batch's transaction began and when it committed (the worker's wall clock, seconds since
the epoch), from which a waited answer reports its stages (`Server-Timing`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from redis import Redis

from ledger_core.model import PostingStatus

OUTCOMES_CHANNEL_PREFIX = "ledgerflow:outcomes:db"


def outcomes_channel(redis: Any) -> str:
    """The wake-up channel of the deployment that uses `redis` (a client or a pipeline).

    Redis keeps one pub/sub namespace for all its databases, so the channel names the
    database number: deployments (or test runs) on different databases of one server
    never hear each other's wake-ups, which name requests by id.
    """
    return f"{OUTCOMES_CHANNEL_PREFIX}{redis.connection_pool.connection_kwargs.get('db', 0)}"


@dataclass(frozen=True, slots=True)
class Wakeup:
    request_id: int
    status: PostingStatus
    transaction_id: str | None = None
    posted_at: str | None = None
    code: str | None = None
    detail: str | None = None
    # When its batch began and committed (worker's wall clock), and when this API process
    # received the wake-up (its own); None where unknown.
    applied: tuple[float, float] | None = None
    received_at: float | None = None

    def item(self) -> list[Any]:
        if self.status is PostingStatus.POSTED and self.transaction_id is not None:
            return [self.request_id, self.status.value, self.transaction_id, self.posted_at]
        if self.status is PostingStatus.REJECTED and self.code is not None:
            return [self.request_id, self.status.value, self.code, self.detail]
        return [self.request_id, self.status.value]


def publish_outcomes(
    redis: Redis, finished: Iterable[Wakeup], *, applied: tuple[float, float] | None = None
) -> None:
    items = [wakeup.item() for wakeup in finished]
    if items:
        message: dict[str, Any] = {"outcomes": items}
        if applied is not None:
            message["applied"] = list(applied)
        redis.publish(outcomes_channel(redis), json.dumps(message, separators=(",", ":")))


def parse_outcomes(message: bytes | str, *, received_at: float | None = None) -> list[Wakeup]:
    decoded = json.loads(message)
    stamps = decoded.get("applied")
    applied = (float(stamps[0]), float(stamps[1])) if stamps else None
    wakeups = []
    for item in decoded["outcomes"]:
        request_id, status = int(item[0]), PostingStatus(item[1])
        known = len(item) == 4
        wakeups.append(
            Wakeup(
                request_id,
                status,
                transaction_id=item[2] if known and status is PostingStatus.POSTED else None,
                posted_at=item[3] if known and status is PostingStatus.POSTED else None,
                code=item[2] if known and status is PostingStatus.REJECTED else None,
                detail=item[3] if known and status is PostingStatus.REJECTED else None,
                applied=applied,
                received_at=received_at,
            )
        )
    return wakeups
