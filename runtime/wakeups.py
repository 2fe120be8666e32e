"""Wake-ups: after a batch commits, the worker publishes each request's new status.

PostgreSQL stays the record; a waiter that misses a message still finds the outcome there
(the API's sweep, or when its wait runs out). A posted request's wake-up also carries its
transaction's id and posting time, and a rejected one its refusal, so an API process that
holds the posting it accepted can answer a waiting client without reading it back.

Message: a JSON list with one item per request,
`[id, "posted", transaction_id, posted_at]`, `[id, "rejected", code, detail]` or
`[id, status]` when nothing more is known.
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

    def item(self) -> list[Any]:
        if self.status is PostingStatus.POSTED and self.transaction_id is not None:
            return [self.request_id, self.status.value, self.transaction_id, self.posted_at]
        if self.status is PostingStatus.REJECTED and self.code is not None:
            return [self.request_id, self.status.value, self.code, self.detail]
        return [self.request_id, self.status.value]


def publish_outcomes(redis: Redis, finished: Iterable[Wakeup]) -> None:
    items = [wakeup.item() for wakeup in finished]
    if items:
        redis.publish(outcomes_channel(redis), json.dumps(items, separators=(",", ":")))


def parse_outcomes(message: bytes | str) -> list[Wakeup]:
    wakeups = []
    for item in json.loads(message):
        request_id, status = int(item[0]), PostingStatus(item[1])
        if len(item) == 4 and status is PostingStatus.POSTED:
            wakeups.append(Wakeup(request_id, status, transaction_id=item[2], posted_at=item[3]))
        elif len(item) == 4 and status is PostingStatus.REJECTED:
            wakeups.append(Wakeup(request_id, status, code=item[2], detail=item[3]))
        else:
            wakeups.append(Wakeup(request_id, status))
    return wakeups
