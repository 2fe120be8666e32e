"""Waiting for outcomes without a thread or a sleep loop per waiter.

Each API process keeps one Redis subscription to the workers' outcome channel and a map
from request id to the futures of requests waiting on it. A wake-up resolves the futures;
the answer itself is read from PostgreSQL, the record. Because a message can be missed
(Redis restarted, subscription not yet ready), the hub also asks PostgreSQL once a second,
in one query for all pending waiters, whether any of them has finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from ledger_core.model import PostingStatus, RequestId
from ledger_core.services import Ledger
from worker.outcomes import OUTCOMES_CHANNEL, parse_outcomes

log = logging.getLogger(__name__)
SWEEP_INTERVAL_S = 1.0


class OutcomeHub:
    def __init__(self, ledger: Ledger, redis_factory: Callable[[], Any]) -> None:
        self.ledger = ledger
        self.redis_factory = redis_factory
        self._waiters: dict[RequestId, set[asyncio.Future[None]]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._listen()),
            asyncio.create_task(self._sweep()),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def wait(self, request_id: RequestId, timeout_s: float) -> bool:
        """Wait until `request_id` leaves `queued` or `timeout_s` passes; True if it did."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(request_id, set()).add(future)
        try:
            # The outcome may have been published before this waiter was registered.
            if await self._finished([request_id]):
                return True
            await asyncio.wait_for(asyncio.shield(future), timeout_s)
            return True
        except TimeoutError:
            return bool(await self._finished([request_id]))
        finally:
            waiters = self._waiters.get(request_id)
            if waiters is not None:
                waiters.discard(future)
                if not waiters:
                    del self._waiters[request_id]

    def _wake(self, request_id: RequestId) -> None:
        for future in self._waiters.get(request_id, ()):
            if not future.done():
                future.set_result(None)

    async def _finished(self, request_ids: list[RequestId]) -> set[RequestId]:
        statuses = await asyncio.to_thread(self.ledger.statuses, request_ids)
        return {rid for rid, status in statuses.items() if status is not PostingStatus.QUEUED}

    async def _listen(self) -> None:
        while True:
            redis = self.redis_factory()
            try:
                async with redis.pubsub() as pubsub:
                    await pubsub.subscribe(OUTCOMES_CHANNEL)
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        for request_id, _status in parse_outcomes(message["data"]):
                            self._wake(RequestId(request_id))
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - resubscribe after Redis comes back
                log.warning("outcome subscription lost (%r); resubscribing", error)
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(Exception):
                    await redis.aclose()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL_S)
            pending = list(self._waiters)
            if not pending:
                continue
            try:
                for request_id in await self._finished(pending):
                    self._wake(request_id)
            except Exception as error:  # noqa: BLE001 - waiters still time out and re-check
                log.warning("waiter sweep failed: %r", error)
