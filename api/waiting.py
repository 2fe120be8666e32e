"""Waiting for outcomes without a thread or a sleep loop per waiter.

Each API process keeps one Redis subscription to the workers' outcome channel and a map
from request id to the futures of requests waiting on it. A wake-up resolves the futures
with what the worker published (see `runtime.wakeups`). Wake-ups of the last few seconds
are kept (`RECENT_MAX` of them), so a waiter that registers after its outcome was
published finds it there without asking PostgreSQL; while the subscription is down,
waiters ask PostgreSQL instead. Because a message can still be missed (published before
the subscription was up, Redis restarted), the hub also asks PostgreSQL once a second, in
one query for all pending waiters, whether any of them has finished: a missed wake-up
costs at most that second, never a wrong answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from ledger_core.model import PostingStatus, RequestId
from ledger_core.services import Ledger
from runtime.wakeups import Wakeup, outcomes_channel, parse_outcomes

log = logging.getLogger(__name__)
SWEEP_INTERVAL_S = 1.0
RECENT_MAX = 10_000


class OutcomeHub:
    def __init__(self, ledger: Ledger, redis_factory: Callable[[], Any]) -> None:
        self.ledger = ledger
        self.redis_factory = redis_factory
        self._waiters: dict[RequestId, set[asyncio.Future[Wakeup]]] = {}
        # request id -> (when it arrived, monotonic; the wake-up)
        self._recent: OrderedDict[RequestId, tuple[float, Wakeup]] = OrderedDict()
        self._listening = False
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

    async def wait(self, request_id: RequestId, timeout_s: float, since: float) -> Wakeup | None:
        """Wait until `request_id` leaves `queued` or `timeout_s` passes.

        `since` (`time.monotonic()`) is a moment before which no wake-up of this request
        can have arrived: before its intake commit, or before the read that found it
        queued. A kept wake-up that arrived earlier is another request's (ids restart
        when a database is recreated) and is not taken. Returns how the request finished
        (as published, or only its status when PostgreSQL told), or None if it is still
        queued.
        """
        future: asyncio.Future[Wakeup] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(request_id, set()).add(future)
        try:
            # The outcome may have been published before this waiter was registered.
            recent = self._recent.get(request_id)
            if recent is not None and recent[0] >= since:
                return recent[1]
            if not self._listening:
                finished = await self._finished([request_id])
                if finished:
                    return finished[0]
            return await asyncio.wait_for(asyncio.shield(future), timeout_s)
        except TimeoutError:
            finished = await self._finished([request_id])
            return finished[0] if finished else None
        finally:
            waiters = self._waiters.get(request_id)
            if waiters is not None:
                waiters.discard(future)
                if not waiters:
                    del self._waiters[request_id]

    def _wake(self, wakeup: Wakeup) -> None:
        request_id = RequestId(wakeup.request_id)
        self._recent[request_id] = (time.monotonic(), wakeup)
        self._recent.move_to_end(request_id)
        if len(self._recent) > RECENT_MAX:
            self._recent.popitem(last=False)
        for future in self._waiters.get(request_id, ()):
            if not future.done():
                future.set_result(wakeup)

    async def _finished(self, request_ids: list[RequestId]) -> list[Wakeup]:
        statuses = await asyncio.to_thread(self.ledger.statuses, request_ids)
        return [
            Wakeup(request_id, status)
            for request_id, status in statuses.items()
            if status is not PostingStatus.QUEUED
        ]

    async def _listen(self) -> None:
        while True:
            redis = self.redis_factory()
            try:
                async with redis.pubsub() as pubsub:
                    await pubsub.subscribe(outcomes_channel(redis))
                    self._listening = True
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        for wakeup in parse_outcomes(message["data"], received_at=time.time()):
                            self._wake(wakeup)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - resubscribe after Redis comes back
                log.warning("outcome subscription lost (%r); resubscribing", error)
                await asyncio.sleep(0.5)
            finally:
                self._listening = False
                with contextlib.suppress(Exception):
                    await redis.aclose()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL_S)
            pending = list(self._waiters)
            if not pending:
                continue
            try:
                for wakeup in await self._finished(pending):
                    self._wake(wakeup)
            except Exception as error:  # noqa: BLE001 - waiters still time out and re-check
                log.warning("waiter sweep failed: %r", error)
