"""Backpressure: refuse new postings for partitions that are too far behind.

A task reads, every `lag_refresh_s`, the age of each partition's oldest queued posting and
how many postings are queued in all (capped count), from PostgreSQL, the record. Intake
asks `check` before it queues anything: a posting routed to a partition older than
`lag_max_s` refuses the whole request with 429 `partition_lagging`; more than `queued_max`
queued in all refuses any posting with 503 `backlog_full`. Both carry Retry-After and the
bound and the reading in the problem body. Nothing is stored for a refused request, so the
client retries it with the same keys.

The readings are at most `lag_refresh_s` old. An API process that cannot read them (the
database is down) lets postings through: intake itself will fail or succeed on its own.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterable

from ledger_core.errors import Overloaded, PartitionLagging
from ledger_core.model import Posting
from ledger_core.rules import partition_of
from ledger_core.services import Ledger
from ledger_core.settings import Settings

log = logging.getLogger(__name__)
RETRY_AFTER_MAX_S = 60


class BacklogFull(Overloaded):
    """Raised when more postings are queued in all than the service is configured to hold."""

    code = "backlog_full"
    title = "Backlog full"
    http_status = 503


class LagGate:
    def __init__(self, ledger: Ledger, settings: Settings) -> None:
        self.ledger = ledger
        self.partitions = settings.partitions
        self.lag_max_s = settings.lag_max_s
        self.queued_max = settings.queued_max
        self.refresh_s = settings.lag_refresh_s
        self.lag_s: dict[int, float] = {}
        self.queued = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.lag_max_s > 0 or self.queued_max > 0

    def start(self) -> None:
        if self.enabled:
            self._task = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def refresh(self) -> None:
        cap = self.queued_max + 1 if self.queued_max else 1
        self.lag_s, self.queued = await asyncio.to_thread(self.ledger.lag_snapshot, cap)

    async def _watch(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception as error:  # noqa: BLE001 - a missed reading must not stop intake
                log.warning("could not read partition lag: %r", error)
            await asyncio.sleep(self.refresh_s)

    def check(self, postings: Iterable[Posting]) -> None:
        """Raise `BacklogFull` or `PartitionLagging` if a bound is passed for these postings."""
        if self.queued_max and self.queued > self.queued_max:
            raise BacklogFull(
                f"{self.queued_max}+ postings are queued; new postings are refused until"
                " workers catch up",
                retry_after_s=5,
                facts={"queued": self.queued, "queued_max": self.queued_max},
            )
        if not self.lag_max_s or not self.lag_s:
            return
        worst: tuple[float, int] | None = None
        for posting in postings:
            partition = partition_of(posting.routing_account_id, self.partitions)
            lag = self.lag_s.get(partition, 0.0)
            if lag > self.lag_max_s and (worst is None or lag > worst[0]):
                worst = (lag, partition)
        if worst is not None:
            lag, partition = worst
            raise PartitionLagging(
                f"partition {partition} is {lag:.1f} s behind (bound {self.lag_max_s:g} s);"
                " nothing was stored, retry with the same key",
                retry_after_s=min(RETRY_AFTER_MAX_S, max(1, math.ceil(lag - self.lag_max_s))),
                facts={
                    "partition": partition,
                    "lag_s": round(lag, 3),
                    "lag_max_s": self.lag_max_s,
                },
            )
