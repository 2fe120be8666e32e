"""A worker's partition leases: claimed, renewed by a heartbeat thread, released.

The leases themselves are rows in PostgreSQL (`ledger_core.store.leases`): the same database
that the apply transaction writes checks the fencing token, so no clock or Redis view can
let two workers commit batches for one partition. This class keeps the worker's own view,
{partition: token}, and hands out the `Fence` each batch carries.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from ledger_core.errors import TransientFault
from ledger_core.model import Fence
from ledger_core.ownership import WorkerReport
from ledger_core.store.leases import Ownership

log = logging.getLogger(__name__)


class PartitionLeases:
    def __init__(
        self,
        ownership: Ownership,
        *,
        owner: str,
        report: Callable[[list[int]], WorkerReport],
        on_change: Callable[[str, int], None] = lambda _kind, _n: None,
    ) -> None:
        self.ownership = ownership
        self.owner = owner
        self.report = report
        self.on_change = on_change
        self._held: dict[int, int] = {}
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def owned(self) -> set[int]:
        with self._guard:
            return set(self._held)

    def fence(self, partition: int) -> Fence | None:
        with self._guard:
            token = self._held.get(partition)
        return None if token is None else Fence(partition, self.owner, token)

    def claim(self, candidates: Iterable[int], count: int) -> list[int]:
        """Take up to `count` free leases among `candidates`; return the partitions taken."""
        with self._guard:
            free = [p for p in candidates if p not in self._held]
        try:
            taken = self.ownership.claim(self.owner, free, count)
        except TransientFault as fault:
            log.warning("%s could not claim partitions: %s", self.owner, fault)
            return []
        if taken:
            with self._guard:
                self._held.update(taken)
            self.on_change("claimed", len(taken))
            log.info("%s took partitions %s", self.owner, sorted(taken))
        return sorted(taken)

    def release(self, partitions: Iterable[int]) -> None:
        with self._guard:
            giving = {p: self._held.pop(p) for p in partitions if p in self._held}
        if not giving:
            return
        try:
            self.ownership.release(self.owner, giving)
        except TransientFault as fault:
            # Not released: the leases expire instead. Nothing is applied under them.
            log.warning("%s could not release %s: %s", self.owner, sorted(giving), fault)
        self.on_change("released", len(giving))
        log.info("%s released partitions %s", self.owner, sorted(giving))

    def release_all(self) -> None:
        self.release(self.owned())

    def forget(self, partition: int) -> None:
        """Drop a lease found lost (a batch was fenced off)."""
        with self._guard:
            lost = self._held.pop(partition, None) is not None
        if lost:
            self.on_change("lost", 1)
            log.warning("%s lost partition %d", self.owner, partition)

    def renew(self) -> None:
        """Renew every held lease and the registry row; drop leases that were taken over."""
        with self._guard:
            held = dict(self._held)
        try:
            kept = self.ownership.renew(self.owner, held, self.report(sorted(held)))
        except TransientFault as fault:
            log.warning("%s could not renew its leases: %s", self.owner, fault)
            return
        for partition in set(held) - kept:
            with self._guard:
                # Only if it was not released or re-claimed in the meantime.
                if self._held.get(partition) == held[partition]:
                    del self._held[partition]
                    lost = True
                else:
                    lost = False
            if lost:
                self.on_change("lost", 1)
                log.warning("%s lost partition %d: taken over", self.owner, partition)

    def start_heartbeat(self, interval_s: float) -> None:
        def beat() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.renew()
                except Exception:
                    log.exception("lease heartbeat failed")

        self._thread = threading.Thread(target=beat, name="lease-heartbeat", daemon=True)
        self._thread.start()

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
