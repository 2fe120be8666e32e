"""Transient faults are retried a bounded number of times; a full intake answers 503."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest

from api.intake import IntakeBatcher
from ledger_core.errors import Overloaded, TransientFault
from ledger_core.model import AccountId, ClientId, Direction, Entry, Posting
from ledger_core.services import retry_transient
from runtime.context import Runtime
from tests.integration.conftest import POSTGRES_URL, TEST_DATABASE


def _kill_backend(pid: int) -> None:
    with psycopg.connect(f"{POSTGRES_URL}/{TEST_DATABASE}", autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_a_connection_lost_mid_transaction_is_retried(runtime: Runtime) -> None:
    attempts: list[int] = []

    def action() -> int:
        with runtime.database.transaction() as repository:
            attempts.append(1)
            connection = repository.connection
            if len(attempts) == 1:
                _kill_backend(
                    int(connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
                )
            return int(connection.exec_driver_sql("SELECT 41 + 1").scalar_one())

    retried: list[TransientFault] = []
    assert retry_transient(action, attempts_max=3, on_retry=retried.append) == 42
    assert len(attempts) == 2
    # One retry, and the fault it reported names the cause: the server ended the backend
    # (SQLSTATE 57P01) or the driver found the connection gone.
    [fault] = retried
    assert fault.sqlstate in {"57P01", "connection"}, fault


def test_retries_are_bounded(runtime: Runtime) -> None:
    def always_killed() -> None:
        with runtime.database.transaction() as repository:
            connection = repository.connection
            _kill_backend(int(connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()))
            connection.exec_driver_sql("SELECT 1")

    retried: list[TransientFault] = []
    with pytest.raises(TransientFault):
        retry_transient(always_killed, attempts_max=2, on_retry=retried.append)
    assert len(retried) == 2


def test_a_full_intake_answers_overloaded(runtime: Runtime) -> None:
    settings = runtime.settings.model_copy(update={"intake_queue_max": 1})
    intake = IntakeBatcher(runtime.ledger, runtime.redis, settings)
    posting = Posting(
        idempotency_key="FULL",
        currency="USD",
        entries=(
            Entry(AccountId(uuid.UUID(int=1)), Direction.DEBIT, 1),
            Entry(AccountId(uuid.UUID(int=2)), Direction.CREDIT, 1),
        ),
    )

    async def submit_twice() -> None:
        # No committer runs, so the first submission stays queued and the second finds it full.
        first = asyncio.ensure_future(intake.submit([(ClientId("c"), posting)], ledger="default"))
        await asyncio.sleep(0)
        with pytest.raises(Overloaded) as raised:
            await intake.submit([(ClientId("c"), posting)], ledger="default")
        assert raised.value.http_status == 503
        first.cancel()

    asyncio.run(submit_twice())
