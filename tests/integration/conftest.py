"""Fixtures for tests against the real PostgreSQL and Redis of the machine.

A missing server fails the run with what to start; nothing is skipped. Each test starts
from empty tables and an empty Redis database. Servers used:
  LEDGERFLOW_TEST_POSTGRES_URL  default postgresql://root@127.0.0.1:5432
  LEDGERFLOW_TEST_REDIS_URL     default redis://127.0.0.1:6379/11
  LEDGERFLOW_TEST_DATABASE      default ledgerflow_test (dropped and recreated at session start)
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import psycopg
import pytest
import uvicorn
from redis import Redis

from api.app import create_app
from ledger_core.access import Keys
from ledger_core.keys import DEFAULT_LEDGER, SCOPES
from ledger_core.settings import Settings
from ledger_core.trail import Actor
from ledgerflow.cli import embedded_settings
from ledgerflow.migrate import upgrade_to_head
from runtime.context import Runtime, build_runtime
from worker.context import WorkerContext
from worker.main import drain as drain_queues

if TYPE_CHECKING:
    from tests.integration.processes import Processes

POSTGRES_URL = os.environ.get("LEDGERFLOW_TEST_POSTGRES_URL", "postgresql://root@127.0.0.1:5432")
REDIS_URL = os.environ.get("LEDGERFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
TEST_DATABASE = os.environ.get("LEDGERFLOW_TEST_DATABASE", "ledgerflow_test")
PARTITIONS = 4


def _require_postgres() -> None:
    try:
        psycopg.connect(f"{POSTGRES_URL}/postgres", connect_timeout=3).close()
    except psycopg.OperationalError as error:
        pytest.fail(
            f"PostgreSQL is not reachable at {POSTGRES_URL} ({error}). Start it with "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` "
            "or set LEDGERFLOW_TEST_POSTGRES_URL.",
            pytrace=False,
        )


def _require_redis() -> None:
    try:
        Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except Exception as error:  # noqa: BLE001 - any failure means the same thing here
        pytest.fail(
            f"Redis is not reachable at {REDIS_URL} ({error!r}). Start it with "
            "`redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ''` "
            "or set LEDGERFLOW_TEST_REDIS_URL.",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def database_url() -> str:
    _require_postgres()
    with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {TEST_DATABASE} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {TEST_DATABASE}")
    url = f"{POSTGRES_URL}/{TEST_DATABASE}"
    upgrade_to_head(Settings(database_url=url).sqlalchemy_url())
    return url


@pytest.fixture(scope="session")
def redis_url() -> str:
    _require_redis()
    return REDIS_URL


@pytest.fixture(scope="session")
def settings(database_url: str, redis_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        partitions=PARTITIONS,
        stale_after_s=1.0,
        reconcile_interval_s=1.0,
        lease_ttl_s=3.0,
    )


@pytest.fixture(scope="session")
def postgres_runtime(settings: Settings) -> Iterator[Runtime]:
    runtime = build_runtime(settings)
    yield runtime
    runtime.database.dispose()


@pytest.fixture(scope="session")
def embedded_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """The embedded default exactly as `ledgerflow dev` configures it (SQLite file, the
    in-process Redis), with nothing of the test environment's LEDGERFLOW_* variables."""
    database_file = tmp_path_factory.mktemp("embedded") / "ledgerflow-dev.db"
    with pytest.MonkeyPatch.context() as environment:
        for name in [n for n in os.environ if n.startswith("LEDGERFLOW_")]:
            environment.delenv(name)
        settings = embedded_settings(str(database_file))
    upgrade_to_head(settings.sqlalchemy_url())
    runtime = build_runtime(settings)
    yield runtime
    runtime.database.dispose()


# Modules whose tests hold for both stores run on each with
# `pytestmark = pytest.mark.parametrize("runtime", STORES, indirect=True)`.
STORES = ["postgresql", "embedded"]


@pytest.fixture
def runtime(request: pytest.FixtureRequest, postgres_runtime: Runtime) -> Runtime:
    """The store under test: PostgreSQL and real Redis, or (parametrized) the embedded one."""
    if getattr(request, "param", "postgresql") == "embedded":
        embedded: Runtime = request.getfixturevalue("embedded_runtime")
        return embedded
    return postgres_runtime


_TABLES = ("entries", "transactions", "posting_requests", "accounts", "partition_leases", "workers")


@pytest.fixture(autouse=True)
def clean(runtime: Runtime) -> Iterator[None]:
    """Every test starts from an empty ledger and an empty Redis database."""
    with runtime.database.engine.begin() as connection:
        if runtime.database.dialect == "postgresql":
            connection.exec_driver_sql(f"TRUNCATE {', '.join(_TABLES)} RESTART IDENTITY CASCADE")
        else:
            for table in _TABLES:
                connection.exec_driver_sql(f"DELETE FROM {table}")
    runtime.redis.flushdb()
    yield


def runtime_env(runtime: Runtime) -> dict[str, str]:
    """This process's environment pointed at `runtime`'s database, Redis and partitions."""
    return os.environ | {
        "LEDGERFLOW_DATABASE_URL": str(runtime.settings.database_url),
        "LEDGERFLOW_REDIS_URL": str(runtime.settings.redis_url),
        "LEDGERFLOW_PARTITIONS": str(runtime.settings.partitions),
    }


def ledgerflow_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`ledgerflow ARGS` in a subprocess with `env`; its exit code and output."""
    return subprocess.run(
        [sys.executable, "-m", "ledgerflow", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def serve(runtime: Runtime, **config: Any) -> Iterator[str]:
    """The API of `runtime` served by uvicorn in a thread of the test process; `config`
    adds uvicorn options (the HTTP protocol class, say)."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(runtime), host="127.0.0.1", port=port, log_level="warning", **config
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the test API did not start within 10 s"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def servers() -> Iterator[tuple[contextlib.ExitStack, dict[int, str]]]:
    """The API servers of the session, one per store, started when first asked for."""
    with contextlib.ExitStack() as stack:
        yield stack, {}


@pytest.fixture
def api_url(runtime: Runtime, servers: tuple[contextlib.ExitStack, dict[int, str]]) -> str:
    stack, urls = servers
    if id(runtime) not in urls:
        urls[id(runtime)] = stack.enter_context(serve(runtime))
    return urls[id(runtime)]


def new_key(
    runtime: Runtime,
    *,
    client: str = "test",
    scopes: tuple[str, ...] | list[str] = SCOPES,
    ledger: str = DEFAULT_LEDGER,
    rate_per_s: float | None = None,
) -> str:
    """The secret of a new API key in `runtime`'s database."""
    _, secret = Keys(runtime.database).create(
        client=client,
        scopes=scopes,
        ledger=ledger,
        rate_per_s=rate_per_s,
        actor=Actor(None, "operator:tests", ledger),
    )
    return secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


_SESSION_KEYS: dict[int, str] = {}

# The Authorization header of the session's key with every scope on the PostgreSQL test
# database, for clients of any API served on it (in a thread or as a process). Set by
# the autouse `session_key` fixture before any test runs.
AUTHORIZED: dict[str, str] = {}


@pytest.fixture
def api_key(runtime: Runtime) -> str:
    """A key with every scope for the client "test" of the default ledger, one per store
    for the session (keys are not emptied between tests)."""
    if id(runtime) not in _SESSION_KEYS:
        _SESSION_KEYS[id(runtime)] = new_key(runtime)
    return _SESSION_KEYS[id(runtime)]


@pytest.fixture(scope="session", autouse=True)
def session_key(postgres_runtime: Runtime) -> None:
    _SESSION_KEYS[id(postgres_runtime)] = new_key(postgres_runtime)
    AUTHORIZED.update(bearer(_SESSION_KEYS[id(postgres_runtime)]))


@pytest.fixture
def client(api_url: str, api_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_url, timeout=40, headers=bearer(api_key)) as http:
        yield http


def drain(runtime: Runtime) -> bool:
    """Run the worker's RQ loop in this process over every partition until the queues are
    empty (burst mode, unfenced); True when it ran any job."""
    return drain_queues(WorkerContext.build(runtime))


def open_account(client: httpx.Client, **fields: Any) -> str:
    body = {"name": "account", "account_type": "asset", "currency": "USD", **fields}
    response = client.post("/api/v1/accounts", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def transfer(
    debit: str, credit: str, amount: str, key: str, currency: str = "USD", **extra: Any
) -> dict[str, Any]:
    return {
        "idempotency_key": key,
        "currency": currency,
        "entries": [
            {"account_id": debit, "direction": "debit", "amount": amount},
            {"account_id": credit, "direction": "credit", "amount": amount},
        ],
        **extra,
    }


def count_rows(runtime: Runtime, table: str) -> int:
    with runtime.database.engine.connect() as connection:
        return int(connection.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())


@pytest.fixture
def processes(runtime: Runtime, tmp_path: Path) -> Iterator[Processes]:
    """A private redis-server, and API and worker processes started on demand, on the test
    database; everything is ended by pid at teardown."""
    from tests.integration.processes import Processes

    env = dict(os.environ)
    running = Processes(tmp_path, env)
    env.update(
        {
            "LEDGERFLOW_DATABASE_URL": str(runtime.settings.database_url),
            "LEDGERFLOW_REDIS_URL": running.redis_url,
            "LEDGERFLOW_PARTITIONS": str(runtime.settings.partitions),
            "LEDGERFLOW_LEASE_TTL_S": "2",
            "LEDGERFLOW_RECONCILE_INTERVAL_S": "1",
            "LEDGERFLOW_STALE_AFTER_S": "1",
            "LEDGERFLOW_API_KEY": AUTHORIZED["Authorization"].removeprefix("Bearer "),
        }
    )
    running.start_redis()
    yield running
    running.stop_all()
