"""Per-key rate limits, shared by every API process through Redis.

A key created with `--rate-per-s R` has a token bucket of capacity max(1, R) (a second's
worth of requests as burst), refilled at R per second. Each request takes a token in one
Lua script that reads Redis's own clock, so API processes on different hosts share one
bucket and one clock. An empty bucket refuses the request with 429 `rate_limited` and
Retry-After (the seconds until a token is back) before anything is stored. Keys without a
rate cost nothing here. If Redis cannot be reached the request is let through (logged):
the limit protects capacity, and intake has its own bounds.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from ledger_core.errors import RateLimited
from ledger_core.keys import ApiKey

log = logging.getLogger(__name__)

# KEYS[1]: the bucket; ARGV[1]: rate per second; ARGV[2]: capacity.
# Returns {1, 0} when a token was taken, else {0, seconds until one is back}.
_TAKE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(bucket[1]) or capacity
local at = tonumber(bucket[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local taken = 0
local wait = 0
if tokens >= 1 then
    tokens = tokens - 1
    taken = 1
else
    wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 1000)
return {taken, tostring(wait)}
"""


def bucket_key(key_id: str) -> str:
    return f"ledgerflow:rate:{key_id}"


def capacity(rate_per_s: float) -> float:
    return max(1.0, rate_per_s)


class RateLimiter:
    def __init__(self, redis_factory: Callable[[], Any]) -> None:
        self.redis_factory = redis_factory
        self._redis: Any = None
        self._script: Any = None

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = self._script = None

    async def take(self, key: ApiKey) -> None:
        """Take one request from `key`'s bucket; raise `RateLimited` if it is empty."""
        rate = key.rate_per_s
        if rate is None:
            return
        if self._script is None:
            self._redis = self.redis_factory()
            self._script = self._redis.register_script(_TAKE)
        try:
            taken, wait = await self._script(keys=[bucket_key(key.id)], args=[rate, capacity(rate)])
        except Exception as error:  # noqa: BLE001 - an unreachable Redis lets requests through
            log.warning("rate limit of %s not checked: %r", key.id, error)
            return
        if int(taken) != 1:
            raise RateLimited(
                f"this key is limited to {rate:g} requests per second; nothing was stored,"
                " retry after Retry-After seconds",
                retry_after_s=max(1, math.ceil(float(wait))),
                facts={"rate_per_s": rate},
            )
