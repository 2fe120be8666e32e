"""CPU time per posting, per process group, read from /proc over one phase.

A group is a set of processes: the API (the process listening on the service's port and
its children, which covers `serve --workers N`), the workers (named host.pid.suffix in the
service's worker registry), PostgreSQL (every child of the postmaster: backends,
checkpointer, background and WAL writers, autovacuum), Redis (`INFO server` process_id)
and the load generator (this process). Each process's time is utime + stime of
/proc/<pid>/stat, which sums its threads but not its children, so no time is counted
twice. PostgreSQL's children come and go during a phase: one born during it counts from
zero, and one that ended during it is found in the postmaster's reaped-children time
(cutime + cstime) less what it had used before the phase began.

The clock ticks 100 times a second, so a group's figure is exact to 10 ms per phase.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.e2e import Figures

GROUPS = ("api", "workers", "postgresql", "redis", "load_generator")
GROUP_LABELS = {
    "api": "API",
    "workers": "workers",
    "postgresql": "PostgreSQL",
    "redis": "Redis",
    "load_generator": "load generator",
}
PROC = Path("/proc")
TICKS_PER_S = os.sysconf("SC_CLK_TCK")
LISTEN_STATE = "0A"
# Fields of /proc/<pid>/stat after the command name, counted from field 3 (man 5 proc).
PPID, UTIME, STIME, CUTIME, CSTIME = 1, 11, 12, 13, 14


def stat_fields(pid: int) -> list[str] | None:
    """The fields after `(comm)` of /proc/<pid>/stat; None when the process is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def cpu_s(pid: int) -> float | None:
    """User and system time of one process (all its threads), in seconds."""
    fields = stat_fields(pid)
    return None if fields is None else (int(fields[UTIME]) + int(fields[STIME])) / TICKS_PER_S


def reaped_s(pid: int) -> float:
    """User and system time of the children `pid` has waited for, in seconds."""
    fields = stat_fields(pid)
    return 0.0 if fields is None else (int(fields[CUTIME]) + int(fields[CSTIME])) / TICKS_PER_S


def parent_of(pid: int) -> int | None:
    fields = stat_fields(pid)
    return None if fields is None else int(fields[PPID])


def children_of(parents: Iterable[int]) -> list[int]:
    """Every process whose parent is one of `parents`."""
    wanted = set(parents)
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit() and parent_of(int(entry.name)) in wanted:
            found.append(int(entry.name))
    return sorted(found)


def listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on TCP `port` (IPv4 or IPv6)."""
    inodes = set()
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in (PROC / "net" / table).read_text().splitlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == LISTEN_STATE and int(local.rsplit(":", 1)[1], 16) == port:
                    inodes.add(inode)
    return inodes


def listening_pids(port: int) -> list[int]:
    """Processes holding a socket that listens on `port`: uvicorn's parent and, with
    --workers N, its children, which inherit the socket. Needs the right to read their
    /proc/<pid>/fd (the same user, or root)."""
    links = {f"socket:[{inode}]" for inode in listening_inodes(port)}
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if any(_link(fd) in links for fd in (entry / "fd").iterdir()):
                found.append(int(entry.name))
    return found


def _link(fd: Path) -> str | None:
    """Where a descriptor points; None if it was closed since it was listed (a busy
    server opens and closes connections while it is scanned: one closed descriptor must
    not hide the listening socket among the others)."""
    try:
        return os.readlink(fd)
    except OSError:
        return None


WORKER_NAME = re.compile(r"^(?P<host>.+)\.(?P<pid>\d+)\.[0-9a-f]+$")


def worker_pids(workers: list[Figures], hostname: str) -> list[int]:
    """Pids of the live workers of this host, from the registry's host.pid.suffix names."""
    pids = []
    for worker in workers:
        match = WORKER_NAME.match(str(worker.get("name", "")))
        if match and worker.get("live") and match["host"] == hostname:
            pids.append(int(match["pid"]))
    return [pid for pid in pids if stat_fields(pid) is not None]


@dataclass(frozen=True)
class Census:
    """Who is in each group for one phase; `postmaster` stands for its children."""

    members: Mapping[str, tuple[int, ...]]
    postmaster: int | None

    def with_children(self) -> Census:
        """Each listed group with its processes' children added (uvicorn --workers N,
        a forking worker, Redis's background save)."""
        members = {
            group: tuple(sorted({*pids, *children_of(pids)})) if pids else ()
            for group, pids in self.members.items()
        }
        return Census(members, self.postmaster)


@dataclass
class Snapshot:
    """CPU seconds of every process of a census at one moment."""

    census: Census
    seconds: dict[int, float] = field(default_factory=dict)
    postgresql: dict[int, float] = field(default_factory=dict)
    postmaster_s: float = 0.0
    postmaster_reaped_s: float = 0.0

    @classmethod
    def take(cls, census: Census) -> Snapshot:
        snapshot = cls(census)
        for pids in census.members.values():
            for pid in pids:
                used = cpu_s(pid)
                if used is not None:
                    snapshot.seconds[pid] = used
        if census.postmaster is not None:
            snapshot.postmaster_s = cpu_s(census.postmaster) or 0.0
            snapshot.postmaster_reaped_s = reaped_s(census.postmaster)
            for pid in children_of([census.postmaster]):
                used = cpu_s(pid)
                if used is not None:
                    snapshot.postgresql[pid] = used
        return snapshot


def postgresql_s(start: Snapshot, end: Snapshot) -> float:
    """The postmaster's and its children's time between two snapshots, ended ones too."""
    living = sum(used - start.postgresql.get(pid, 0.0) for pid, used in end.postgresql.items())
    ended_before = sum(used for pid, used in start.postgresql.items() if pid not in end.postgresql)
    reaped = end.postmaster_reaped_s - start.postmaster_reaped_s - ended_before
    return end.postmaster_s - start.postmaster_s + living + max(0.0, reaped)


def usage_s(start: Snapshot, end: Snapshot) -> dict[str, float | None]:
    """CPU seconds per group between two snapshots; None for a group nobody was found in."""
    used: dict[str, float | None] = {}
    for group in GROUPS:
        if group == "postgresql":
            found = start.census.postmaster is not None
            used[group] = round(postgresql_s(start, end), 3) if found else None
            continue
        pids = start.census.members.get(group, ())
        if not pids:
            used[group] = None
            continue
        total = sum(
            end.seconds[pid] - start.seconds[pid]
            for pid in pids
            if pid in start.seconds and pid in end.seconds
        )
        used[group] = round(total, 3)
    return used


def cpu_figures(start: Snapshot, end: Snapshot, *, postings: int) -> Figures:
    """A phase's CPU: seconds and µs per posting by group (and in total), and the pids."""
    seconds = usage_s(start, end)
    measured = [value for value in seconds.values() if value is not None]
    per_posting: dict[str, float | None] = {
        group: None if value is None or not postings else round(value * 1e6 / postings, 1)
        for group, value in seconds.items()
    }
    per_posting["total"] = round(sum(measured) * 1e6 / postings, 1) if postings else None
    pids = {group: list(start.census.members.get(group, ())) for group in GROUPS}
    del pids["postgresql"]
    return {
        "seconds": seconds,
        "us_per_posting": per_posting,
        "pids": pids,
        "postmaster": start.census.postmaster,
        "postgresql_processes": len(end.postgresql),
    }
