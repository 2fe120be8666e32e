"""The worker process: own a fair share of partitions, consume their RQ queues, stop cleanly.

Each round of the loop:
1. reads the live workers from the registry and works out this worker's share: pinned
   workers (`--partitions`) keep theirs, the others split the rest evenly by name rank;
2. releases partitions beyond its share (this is between jobs, so at a batch boundary) and
   claims free or expired ones up to it, enqueueing a job for each one taken so that work
   left by a dead owner is picked up at once;
3. runs the reconciler when due;
4. runs RQ's SimpleWorker (jobs execute in this process, no fork per job) over the queues
   of the partitions it owns, for at most `ROUND_S` seconds or one second of idleness.

A heartbeat thread renews the leases and the registry row every third of the lease time.
Every batch is fenced with its lease (see `ledger_core.store.leases`). SIGTERM or SIGINT ends
the job in hand after its current batch, releases the leases and exits 0.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from types import FrameType
from typing import Any

from rq import SimpleWorker
from rq.job import Job
from rq.queue import Queue
from rq.serializers import JSONSerializer

from ledger_core.errors import TransientFault
from ledger_core.ownership import WorkerReport, fair_share
from ledger_core.store.leases import Ownership
from runtime.context import Runtime
from runtime.queues import enqueue_batches, partition_queue, queue_name
from worker.context import WorkerContext
from worker.leases import PartitionLeases
from worker.reconciler import reconcile

log = logging.getLogger(__name__)
ROUND_S = 1.0


class _BoundJob(Job):
    """A job whose function is the worker's own, bound to its context (`worker.context`):
    RQ's import of the function's name is never used, and neither are the callbacks a
    job hash may name (`on_success`, `on_failure`, `on_stopped`): LedgerFlow enqueues
    none, so whatever names one was not written by LedgerFlow."""

    bound: Any = None

    @property
    def func(self) -> Any:
        return self.bound

    @property
    def success_callback(self) -> None:
        return None

    @property
    def failure_callback(self) -> None:
        return None

    @property
    def stopped_callback(self) -> None:
        return None


class _RqWorker(SimpleWorker):
    """SimpleWorker that runs only this worker's job functions, ends its `work` loop after
    a deadline and reports stop requests."""

    context: WorkerContext
    on_stop_request: Any = None
    deadline: float = float("inf")

    def execute_job(self, job: Job, queue: Queue) -> None:
        # An unknown function name stays unbound: RQ fails the job without running it.
        bound = self.context.bind(job.func_name)
        if isinstance(job, _BoundJob):
            job.bound = bound
        if bound is None:
            log.error("refused job %s: %r is not a LedgerFlow job", job.id, job.func_name)
        callbacks = [
            name
            for name in (
                job._success_callback_name,
                job._failure_callback_name,
                job._stopped_callback_name,
            )
            if name
        ]
        if callbacks:
            log.error("job %s names callbacks %r: they are not run", job.id, callbacks)
        super().execute_job(job, queue)
        if time.monotonic() >= self.deadline:
            self._stop_requested = True

    def subscribe(self) -> None:
        """No RQ command channel. Its listener thread blocks on a 60 s read, and stopping
        it joined for up to a second at the end of every round, while jobs waited;
        workers here stop on SIGTERM instead."""

    def handle_warm_shutdown_request(self) -> None:
        super().handle_warm_shutdown_request()  # type: ignore[no-untyped-call]
        if self.on_stop_request is not None:
            self.on_stop_request()


class PartitionWorker:
    def __init__(
        self,
        runtime: Runtime,
        *,
        pinned: Sequence[int] | None = None,
        name: str | None = None,
    ) -> None:
        self.runtime = runtime
        self.context = WorkerContext.build(runtime)
        settings = runtime.settings
        self.pinned = sorted(pinned) if pinned else None
        self.name = name or f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:6]}"
        self.ownership = Ownership(
            runtime.database, partitions=settings.partitions, ttl_s=settings.lease_ttl_s
        )
        self.leases = PartitionLeases(
            self.ownership,
            owner=self.name,
            report=self.report,
            on_change=lambda kind, n: self.context.telemetry.count(f"leases|{kind}", n),
        )
        self.stopping = self.context.stopping
        self._next_reconcile = 0.0
        # The RQ worker of the partitions owned now, kept across rounds while they stay
        # the same (see `round`).
        self._rq_worker: _RqWorker | None = None

    def report(self, partitions: list[int]) -> WorkerReport:
        batches, applied, last_error = self.context.telemetry.totals()
        return WorkerReport(
            name=self.name,
            pinned=self.pinned,
            partitions=partitions,
            batches=batches,
            applied=applied,
            last_error=last_error,
        )

    def request_stop(self, *_: object) -> None:
        self.stopping.set()

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.request_stop()

    def run(self) -> int:
        """Work until asked to stop; return the process exit code."""
        self._install_signal_handlers()
        self.stopping.clear()
        self.ownership.ensure_partitions()
        self.ownership.register(self.report([]))
        self.context.leases = self.leases
        self.leases.start_heartbeat(self.runtime.settings.lease_ttl_s / 3)
        log.info("worker %s started (pinned: %s)", self.name, self.pinned)
        try:
            while not self.stopping.is_set():
                self.round()
        finally:
            self.leases.stop_heartbeat()
            self.leases.release_all()
            self.context.leases = None
            try:
                self.ownership.forget(self.name)
            except TransientFault as fault:
                log.warning("could not leave the worker registry: %s", fault)
            log.info("worker %s stopped", self.name)
        return 0

    def rebalance(self) -> list[int]:
        """Release what is beyond this worker's share, claim up to it; return what it owns."""
        if self.pinned is not None:
            pool, share = self.pinned, len(self.pinned)
        else:
            live = [w for w in self.ownership.workers(forget_silent=True) if w.live]
            pool, share = fair_share(self.name, live, self.runtime.settings.partitions)
        before = sorted(self.leases.owned())
        allowed = set(pool)
        keep = [p for p in before if p in allowed]
        self.leases.release([p for p in before if p not in allowed] + keep[share:])
        missing = share - min(len(keep), share)
        if missing > 0:
            taken = self.leases.claim(pool, missing)
            if taken:
                enqueue_batches(self.runtime.redis, {p: [] for p in taken}, force=True)
        owned = sorted(self.leases.owned())
        if owned != before:
            self.ownership.register(self.report(owned))  # operators see it at once
        return owned

    def round(self) -> None:
        """One turn of the loop: rebalance, reconcile when due, then consume owned queues."""
        try:
            owned = self.rebalance()
        except TransientFault as fault:
            log.warning("could not rebalance: %s", fault)
            owned = sorted(self.leases.owned())
        now = time.monotonic()
        if owned and now >= self._next_reconcile:
            self._next_reconcile = now + self.runtime.settings.reconcile_interval_s
            try:
                reconcile(self.context, owned)
            except Exception:
                log.exception("reconciler failed")
        if not owned:
            self.stopping.wait(ROUND_S)
            return
        rq_worker = self._rq_worker_over(owned)
        rq_worker.deadline = now + ROUND_S
        try:
            rq_worker.work(
                max_idle_time=1,
                logging_level="WARNING",
                dequeue_strategy="round_robin",  # type: ignore[arg-type]
            )
        finally:
            self._install_signal_handlers()

    def _rq_worker_over(self, owned: list[int]) -> _RqWorker:
        """The RQ worker of this round: the last one while the partitions are the same.

        A new RQ worker's first round cleans every queue's registries (its last cleaning
        time is unknown), which kept the worker from listening for some 20-30 ms each
        second; a kept one cleans on RQ's own schedule (every ten minutes).
        """
        kept = self._rq_worker
        if kept is not None and [q.name for q in kept.queues] == [queue_name(p) for p in owned]:
            kept._stop_requested = False
            return kept
        fresh = rq_worker_for(self.context, owned, name=f"{self.name}.{time.monotonic_ns()}")
        fresh.on_stop_request = self.request_stop
        self._rq_worker = fresh
        return fresh


def rq_worker_for(context: WorkerContext, partitions: Sequence[int], *, name: str) -> _RqWorker:
    """An RQ worker over the queues of `partitions` that runs jobs with `context`."""
    rq_worker = _RqWorker(
        [partition_queue(context.redis, p) for p in partitions],
        connection=context.redis,
        serializer=JSONSerializer,
        job_class=_BoundJob,
        name=name,
    )
    rq_worker.context = context
    return rq_worker


def drain(context: WorkerContext) -> bool:
    """Run every partition's queue in this process until all are empty, unfenced (tests and
    tools that drain a ledger no worker owns); True when it ran any job."""
    rq_worker = rq_worker_for(
        context, range(context.settings.partitions), name=f"drain.{uuid.uuid4().hex[:8]}"
    )
    return bool(rq_worker.work(burst=True, logging_level="WARNING"))
