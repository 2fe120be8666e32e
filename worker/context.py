"""What a job runs with: the worker process's services, handed to each job explicitly.

RQ names a job's function by import path; a worker here never imports that path. It
looks the name up in `JOBS` (the job functions of `worker.jobs`) and calls the function
with this process's `WorkerContext` and the job's plain arguments. Any other name placed
in a partition queue is refused: the job fails without running anything, so whoever can
write to Redis cannot choose what a worker executes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from redis import Redis

from ledger_core.services import Ledger
from ledger_core.settings import Settings
from runtime.context import Runtime
from runtime.telemetry import Telemetry

if TYPE_CHECKING:
    from worker.leases import PartitionLeases


@dataclass
class WorkerContext:
    settings: Settings
    ledger: Ledger
    redis: Redis
    telemetry: Telemetry
    # Set when the process should stop: a job ends after the batch in hand.
    stopping: threading.Event = field(default_factory=threading.Event)
    # In a worker process, the leases its batches are fenced with; None applies unfenced
    # (tests and tools that drain a ledger no worker owns).
    leases: PartitionLeases | None = None

    @classmethod
    def build(cls, runtime: Runtime) -> WorkerContext:
        """The worker's services over `runtime`: its own ledger, whose retries it counts."""
        telemetry = Telemetry(runtime.redis)
        return cls(
            settings=runtime.settings,
            ledger=runtime.make_ledger(on_retry=telemetry.retried),
            redis=runtime.redis,
            telemetry=telemetry,
        )

    def bind(self, function_name: str | None) -> Callable[..., Any] | None:
        """The job function registered under `function_name`, bound to this context;
        None for any other name."""
        from worker.jobs import JOBS

        function = JOBS.get(function_name or "")
        if function is None:
            return None

        def bound(*args: Any, **kwargs: Any) -> Any:
            return function(self, *args, **kwargs)

        return bound
