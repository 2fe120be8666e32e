"""Group commit: concurrent posting requests share one intake transaction.

Requests queue here; a committer takes everything waiting (up to `intake_batch_max`;
while the other committer is inside a commit it waits at most `intake_window_ms` for
more), records it in one PostgreSQL commit, then
enqueues one RQ job per partition for the new requests, and only then answers each
request. 202 therefore always means committed. If Redis is down at that moment the
requests stay queued in PostgreSQL and the reconciler enqueues them later.

A submission's postings come from one API key: they are recorded with its client and ledger.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from redis import Redis
from starlette.concurrency import run_in_threadpool

from api.backpressure import LagGate
from api.metrics import (
    ENQUEUE_FAILURES,
    INTAKE_BATCH_SIZE,
    INTAKE_COMMIT_SECONDS,
    POSTINGS_ACCEPTED,
    REFUSED_BY_BACKPRESSURE,
)
from ledger_core.errors import Overloaded
from ledger_core.model import ClientId, Posting, Sender
from ledger_core.services import Accepted, Ledger
from ledger_core.settings import Settings
from runtime.queues import enqueue_batches

log = logging.getLogger(__name__)
COMMITTERS = 2


@dataclass(frozen=True, slots=True)
class IntakeTimes:
    """When a group commit committed and when its jobs were enqueued (wall clock)."""

    committed_at: float
    enqueued_at: float


@dataclass
class _Submission:
    requests: Sequence[tuple[ClientId, Posting]]
    ledger: str
    future: asyncio.Future[tuple[list[Accepted], IntakeTimes | None]] = field(repr=False)


class IntakeBatcher:
    def __init__(
        self, ledger: Ledger, redis: Redis, settings: Settings, gate: LagGate | None = None
    ) -> None:
        self.ledger = ledger
        self.gate = gate
        self.redis = redis
        self.direct = settings.mode == "direct"
        self.window_s = settings.intake_window_ms / 1000
        self.batch_max = settings.intake_batch_max
        self.queue: asyncio.Queue[_Submission] = asyncio.Queue(settings.intake_queue_max)
        self._tasks: list[asyncio.Task[None]] = []
        # Committers inside a commit now (they run on the event loop's thread: no lock).
        self._committing = 0

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._committer()) for _ in range(COMMITTERS)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def submit(
        self, requests: Sequence[tuple[ClientId, Posting]], *, ledger: str
    ) -> list[Accepted]:
        """Record `requests` sent in `ledger` durably (in the next group commit); one answer
        each, in order.

        In direct mode each posting is instead recorded and applied in its own transaction.
        """
        answers, _ = await self.submit_timed(requests, ledger=ledger)
        return answers

    async def submit_timed(
        self, requests: Sequence[tuple[ClientId, Posting]], *, ledger: str
    ) -> tuple[list[Accepted], IntakeTimes | None]:
        """`submit`, with when the group commit committed and enqueued (None in direct mode)."""
        if self.direct:
            # AnyIO's thread pool (40 threads), as the synchronous ledger's handlers had.
            return await run_in_threadpool(self._post_directly, requests, ledger), None
        if self.gate is not None:
            try:
                self.gate.check(posting for _, posting in requests)
            except Overloaded as refusal:
                REFUSED_BY_BACKPRESSURE.labels(refusal.code).inc()
                raise
        future: asyncio.Future[tuple[list[Accepted], IntakeTimes | None]] = (
            asyncio.get_running_loop().create_future()
        )
        try:
            self.queue.put_nowait(_Submission(requests, ledger, future))
        except asyncio.QueueFull:
            raise Overloaded(
                "intake is full; retry after a short pause",
                facts={"intake_queue_max": self.queue.maxsize},
            ) from None
        return await future

    async def _collect(self) -> list[_Submission]:
        submissions = [await self.queue.get()]
        count = len(submissions[0].requests)
        # Linger for more requests only while another commit is in flight: under load they
        # then gather into a larger group commit; an idle intake commits at once instead of
        # adding the window to every request.
        linger_s = self.window_s if self._committing else 0.0
        deadline = time.monotonic() + linger_s
        while count < self.batch_max:
            try:
                submission = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    submission = await asyncio.wait_for(self.queue.get(), remaining)
                except TimeoutError:
                    break
            submissions.append(submission)
            count += len(submission.requests)
        return submissions

    async def _committer(self) -> None:
        while True:
            submissions = await self._collect()
            self._committing += 1
            try:
                answers = await asyncio.to_thread(self._commit, submissions)
            except Exception as error:  # noqa: BLE001 - each waiting request gets the error
                for submission in submissions:
                    if not submission.future.done():
                        submission.future.set_exception(error)
                continue
            finally:
                self._committing -= 1
            for submission, answer in zip(submissions, answers, strict=True):
                if not submission.future.done():
                    submission.future.set_result(answer)

    def _post_directly(
        self, requests: Sequence[tuple[ClientId, Posting]], ledger: str
    ) -> list[Accepted]:
        return [
            self.ledger.post_directly(Sender(client_id, ledger), posting)
            for client_id, posting in requests
        ]

    def _commit(
        self, submissions: Sequence[_Submission]
    ) -> list[tuple[list[Accepted], IntakeTimes | None]]:
        started = time.perf_counter()
        requests = [
            (Sender(client_id, s.ledger), posting)
            for s in submissions
            for client_id, posting in s.requests
        ]
        accepted = self.ledger.accept(requests)
        committed_at = time.time()
        by_partition: dict[int, list[int]] = {}
        for answer in accepted:
            if answer.created and answer.record is not None:
                by_partition.setdefault(answer.record.partition, []).append(
                    answer.record.request_id
                )
        try:
            enqueue_batches(self.redis, by_partition)
        except Exception:
            ENQUEUE_FAILURES.inc()
            log.exception("enqueue failed after intake commit; the reconciler will re-enqueue")
        times = IntakeTimes(committed_at, time.time())
        INTAKE_BATCH_SIZE.observe(len(requests))
        INTAKE_COMMIT_SECONDS.observe(time.perf_counter() - started)
        created = sum(1 for a in accepted if a.created)
        POSTINGS_ACCEPTED.labels("created").inc(created)
        POSTINGS_ACCEPTED.labels("replayed_or_conflict").inc(len(accepted) - created)
        answers: list[tuple[list[Accepted], IntakeTimes | None]] = []
        offset = 0
        for submission in submissions:
            answers.append((accepted[offset : offset + len(submission.requests)], times))
            offset += len(submission.requests)
        return answers
