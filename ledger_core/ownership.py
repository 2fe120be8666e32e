"""Who applies which partition: leases, the worker registry's rows, the fair-share rule.

Values only, and the pure rule by which an unpinned worker works out its share; the rows
live in PostgreSQL and are read and written by `ledger_core.store.leases`, which also
explains the fencing that keeps two workers from committing for one partition.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Lease:
    partition: int
    owner: str | None
    token: int
    age_s: float | None  # since the last renewal; None when nobody owns it
    live: bool


@dataclass(frozen=True)
class WorkerState:
    name: str
    pinned: list[int] | None
    partitions: list[int]
    batches: int
    applied: int
    last_error: str | None
    last_error_age_s: float | None
    started_age_s: float
    heartbeat_age_s: float
    live: bool


@dataclass(frozen=True)
class WorkerReport:
    """What a worker tells the registry at each heartbeat."""

    name: str
    pinned: list[int] | None
    partitions: list[int]
    batches: int
    applied: int
    last_error: str | None = None


def fair_share(me: str, live: Sequence[WorkerState], partitions: int) -> tuple[list[int], int]:
    """The partitions an unpinned worker may take and how many of them are its share.

    Pinned workers keep their partitions; the rest are shared among the live unpinned
    workers, ranked by name: each takes the floor of its share, the first few one more.
    """
    pinned: set[int] = set()
    sharing = {me}
    for state in live:
        if state.pinned is not None:
            pinned.update(state.pinned)
        else:
            sharing.add(state.name)
    pool = [p for p in range(partitions) if p not in pinned]
    ranked = sorted(sharing)
    base, extra = divmod(len(pool), len(ranked))
    return pool, base + (1 if ranked.index(me) < extra else 0)
