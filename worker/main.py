"""The worker process: claim partitions, consume their RQ queues, reconcile, stop cleanly.

The loop runs RQ's SimpleWorker (jobs execute in this process, no fork per job) over the
queues of the partitions this process holds leases for. RQ returns control every second
of idleness or every `JOBS_PER_ROUND` jobs, so the loop can claim partitions that became
free and run the reconciler. SIGTERM or SIGINT finishes the job in hand, releases the
leases and exits 0.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any

from rq import SimpleWorker
from rq.serializers import JSONSerializer

from worker.leases import PartitionLeases
from worker.queues import partition_queue
from worker.reconciler import reconcile
from worker.runtime import Runtime

log = logging.getLogger(__name__)
JOBS_PER_ROUND = 200


class _RqWorker(SimpleWorker):
    """SimpleWorker that tells the partition loop when a warm shutdown was asked for."""

    on_stop_request: Any = None

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
        settings = runtime.settings
        self.wanted = list(pinned) if pinned else list(range(settings.partitions))
        self.name = name or f"{socket.gethostname()}.{os.getpid()}"
        self.leases = PartitionLeases(runtime.redis, ttl_s=settings.lease_ttl_s, owner=self.name)
        self.stopping = threading.Event()
        self._next_reconcile = 0.0

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
        self.leases.start_heartbeat()
        log.info("worker %s wants partitions %s", self.name, self.wanted)
        try:
            while not self.stopping.is_set():
                self.round()
        finally:
            self.leases.stop_heartbeat()
            self.leases.release_all()
            log.info("worker %s stopped", self.name)
        return 0

    def round(self) -> None:
        """One turn of the loop: claim, reconcile when due, then consume owned queues."""
        owned = sorted(self.leases.claim(self.wanted))
        now = time.monotonic()
        if owned and now >= self._next_reconcile:
            self._next_reconcile = now + self.runtime.settings.reconcile_interval_s
            try:
                reconcile(self.runtime, owned)
            except Exception:
                log.exception("reconciler failed")
        if not owned:
            self.stopping.wait(min(1.0, self.runtime.settings.lease_ttl_s / 3))
            return
        rq_worker = _RqWorker(
            [partition_queue(self.runtime.redis, p) for p in owned],
            connection=self.runtime.redis,
            serializer=JSONSerializer,
            name=f"{self.name}.{time.monotonic_ns()}",
        )
        rq_worker.on_stop_request = self.request_stop
        try:
            rq_worker.work(
                max_idle_time=1,
                max_jobs=JOBS_PER_ROUND,
                logging_level="WARNING",
                dequeue_strategy="round_robin",  # type: ignore[arg-type]
            )
        finally:
            self._install_signal_handlers()
