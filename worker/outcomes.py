"""Wake-ups: after a batch commits, the worker publishes each request's new status.

The message is only a wake-up: PostgreSQL stays the record, and a waiter that misses a
message still finds the outcome there when its wait runs out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from redis import Redis

OUTCOMES_CHANNEL = "ledgerflow:outcomes"


def publish_outcomes(redis: Redis, finished: Iterable[tuple[int, str]]) -> None:
    message = json.dumps([[request_id, status] for request_id, status in finished])
    if message != "[]":
        redis.publish(OUTCOMES_CHANNEL, message)


def parse_outcomes(message: bytes | str) -> list[tuple[int, str]]:
    return [(int(request_id), str(status)) for request_id, status in json.loads(message)]
