"""Partition leases: one active consumer per partition.

A worker holds a partition while it holds that partition's lease, a Redis lock with an
expiry that a heartbeat thread renews every third of its time to live. A worker that dies
stops renewing; its partitions are free to claim once the lease expires.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable

from redis import Redis
from redis.exceptions import LockError, RedisError
from redis.lock import Lock

log = logging.getLogger(__name__)


def lease_key(partition: int) -> str:
    return f"ledgerflow:lease:p{partition}"


class PartitionLeases:
    def __init__(self, redis: Redis, *, ttl_s: float, owner: str) -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self.owner = owner
        self._held: dict[int, Lock] = {}
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def owned(self) -> set[int]:
        with self._guard:
            return set(self._held)

    def claim(self, wanted: Iterable[int]) -> set[int]:
        """Take every lease in `wanted` that nobody holds; return what is owned after."""
        with self._guard:
            for partition in wanted:
                if partition in self._held:
                    continue
                lock = Lock(
                    self.redis, lease_key(partition), timeout=self.ttl_s, thread_local=False
                )
                try:
                    if lock.acquire(blocking=False, token=f"{self.owner}:{partition}"):
                        self._held[partition] = lock
                        log.info("%s took partition %d", self.owner, partition)
                except RedisError as error:
                    log.warning("could not claim partition %d: %r", partition, error)
            return set(self._held)

    def renew(self) -> None:
        """Extend every held lease; drop those that were lost (expired and taken, or wiped)."""
        with self._guard:
            for partition, lock in list(self._held.items()):
                try:
                    lock.reacquire()
                except (LockError, RedisError) as error:
                    log.warning("%s lost partition %d: %r", self.owner, partition, error)
                    del self._held[partition]

    def release_all(self) -> None:
        with self._guard:
            for lock in self._held.values():
                with contextlib.suppress(LockError, RedisError):
                    lock.release()
            self._held.clear()

    def start_heartbeat(self) -> None:
        def beat() -> None:
            while not self._stop.wait(self.ttl_s / 3):
                self.renew()

        self._thread = threading.Thread(target=beat, name="lease-heartbeat", daemon=True)
        self._thread.start()

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.ttl_s)
