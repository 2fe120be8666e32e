"""Finding the processes behind the services under test, for the CPU figures.

Everything found is on this host: the benchmark drives loopback addresses only, and a pid
means nothing on another machine. What cannot be found is left out of the figures (its
group reads None) rather than guessed; `--api-pid` and `--worker-pid` name processes
that discovery would miss (another user's, whose /proc/<pid>/fd is not readable).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import psycopg
from redis import Redis
from redis.exceptions import RedisError

from benchmarks.cpu import Census, listening_pids, parent_of, stat_fields, worker_pids
from benchmarks.e2e import API_PREFIX, LOOPBACK_HOSTS

CONNECT_TIMEOUT_S = 5
POSTGRES_PORT = 5432


def is_local_host(host: str | None) -> bool:
    """A loopback host, or none at all (a Unix socket): a pid found there is ours to read."""
    return not host or host.startswith("/") or host in LOOPBACK_HOSTS


def redis_pid(url: str | None) -> int | None:
    """The pid of the Redis server at `url` (`INFO server` process_id), if local and up."""
    if not url or not is_local_host(urlsplit(url).hostname):
        return None
    client = Redis.from_url(url, socket_timeout=CONNECT_TIMEOUT_S)
    try:
        pid = int(client.info("server")["process_id"])
    except (RedisError, KeyError, ValueError):
        return None
    finally:
        client.close()
    return pid if stat_fields(pid) is not None else None


def postmaster_pid(database_url: str | None) -> int | None:
    """The PostgreSQL postmaster: the parent of a backend of ours at `database_url`, or,
    without a URL, the process listening on the default port."""
    if database_url is None:
        found = listening_pids(POSTGRES_PORT)
        return found[0] if len(found) == 1 else None
    host = psycopg.conninfo.conninfo_to_dict(database_url).get("host")
    if not is_local_host(None if host is None else str(host)):
        return None
    try:
        with psycopg.connect(database_url, connect_timeout=CONNECT_TIMEOUT_S) as connection:
            row = connection.execute("SELECT pg_backend_pid()").fetchone()
    except psycopg.Error:
        return None
    return None if row is None else parent_of(int(row[0]))


async def live_worker_pids(client: httpx.AsyncClient) -> list[int]:
    """This host's live workers, from the service's status (`GET /api/v1/ops/status`)."""
    try:
        response = await client.get(f"{API_PREFIX}/ops/status")
        workers = response.json()["workers"] if response.is_success else []
    except (httpx.HTTPError, ValueError, KeyError):
        return []
    return worker_pids(workers, socket.gethostname())


@dataclass(frozen=True)
class Known:
    """What stays the same for the whole benchmark: named pids and the servers' pids."""

    api_pids: Sequence[int]
    direct_api_pids: Sequence[int]
    worker_pids: Sequence[int]
    redis: int | None
    postmaster: int | None


def api_pids_of(url: str, named: Sequence[int]) -> list[int]:
    """The pids named for this API, else whoever listens on its port."""
    if named:
        return list(named)
    return listening_pids(urlsplit(url).port or 80)


async def census_of(
    api_url: str | None,
    *,
    named_api_pids: Sequence[int],
    status: httpx.AsyncClient,
    known: Known,
) -> Census:
    """The processes of one phase: the API under load at `api_url` (None: none), the
    workers, Redis, PostgreSQL and this process, found again before every phase so that
    restarted processes are followed."""
    workers = list(known.worker_pids) or await live_worker_pids(status)
    members = {
        "api": tuple(api_pids_of(api_url, named_api_pids)) if api_url else (),
        "workers": tuple(workers),
        "redis": (known.redis,) if known.redis else (),
    }
    census = Census(members, known.postmaster).with_children()
    load_generator = {"load_generator": (os.getpid(),)}
    return Census({**census.members, **load_generator}, census.postmaster)
