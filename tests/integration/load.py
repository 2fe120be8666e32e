"""Steady posting load for tests with real processes, bounded in count and time."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from sqlalchemy import text

from ledger_core.rules import posting_from_document
from runtime.context import Runtime
from tests.integration.conftest import AUTHORIZED, transfer
from tests.integration.processes import Processes


def open_accounts(api: str, count: int) -> list[str]:
    with httpx.Client(base_url=api, timeout=30, headers=AUTHORIZED) as client:
        return [
            client.post(
                "/api/v1/accounts",
                json={"name": f"a{i}", "account_type": "asset", "currency": "USD"},
            ).json()["id"]
            for i in range(count)
        ]


class SteadyLoad:
    """Batches of `batch` postings every `interval_s` from a thread, until stopped or until
    `postings_max` or `duration_max_s` is reached. Every batch must be accepted (200)."""

    def __init__(
        self,
        api: str,
        accounts: list[str],
        *,
        prefix: str,
        batch: int = 20,
        interval_s: float = 0.05,
        postings_max: int = 20_000,
        duration_max_s: float = 120,
    ) -> None:
        self.api = api
        self.accounts = accounts
        self.prefix = prefix
        self.batch = batch
        self.interval_s = interval_s
        self.postings_max = postings_max
        self.duration_max_s = duration_max_s
        self.sent = 0
        self.refused: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"load-{prefix}", daemon=True)

    def _run(self) -> None:
        rng = random.Random(self.prefix)
        deadline = time.monotonic() + self.duration_max_s
        with httpx.Client(base_url=self.api, timeout=30, headers=AUTHORIZED) as client:
            while (
                not self._stop.is_set()
                and self.sent < self.postings_max
                and time.monotonic() < deadline
            ):
                bodies: list[dict[str, object]] = []
                for _ in range(self.batch):
                    debit, credit = rng.sample(self.accounts, 2)
                    key = f"{self.prefix}-{self.sent + len(bodies)}"
                    bodies.append(transfer(debit, credit, f"{rng.randint(1, 99)}.00", key))
                response = client.post("/api/v1/transactions/batch", json={"transactions": bodies})
                if response.status_code != 200:
                    self.refused.append(response.text)
                else:
                    self.sent += len(bodies)
                self._stop.wait(self.interval_s)

    @contextmanager
    def running(self) -> Iterator[SteadyLoad]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(timeout=60)
        assert not self.refused, self.refused[:3]


def queued(runtime: Runtime) -> int:
    with runtime.database.engine.connect() as connection:
        return int(
            connection.execute(
                text("SELECT count(*) FROM posting_requests WHERE status = 'queued'")
            ).scalar_one()
        )


def wait_until_drained(runtime: Runtime, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while queued(runtime):
        assert time.monotonic() < deadline, f"{queued(runtime)} postings still queued"
        time.sleep(0.2)


def owners(runtime: Runtime, lease_ttl_s: float) -> dict[int, str | None]:
    """{partition: owner} of the leases that are held and not expired."""
    with runtime.database.engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT partition, owner, extract(epoch FROM now() - renewed_at) AS age"
                " FROM partition_leases ORDER BY partition"
            )
        ).all()
    return {
        int(row.partition): row.owner if row.age is not None and row.age < lease_ttl_s else None
        for row in rows
    }


def assert_apply_order_is_acceptance_order(runtime: Runtime) -> None:
    """Per routing account, transactions were written in the order requests were accepted."""
    with runtime.database.engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT r.id, r.document FROM transactions t"
                " JOIN posting_requests r ON r.id = t.request_id ORDER BY t.position"
            )
        ).all()
    last: dict[object, int] = {}
    for row in rows:
        routing = posting_from_document(row.document).routing_account_id
        assert last.get(routing, 0) < row.id, f"request {row.id} applied out of order"
        last[routing] = row.id


def assert_applied_once(runtime: Runtime, processes: Processes, expected: int) -> None:
    """Exactly `expected` requests, all posted, one transaction each, and `ledgerflow verify`
    passes."""
    with runtime.database.engine.connect() as connection:
        counts: dict[str, int] = dict(
            connection.execute(
                text("SELECT status, count(*) FROM posting_requests GROUP BY status")
            ).all()
        )
        transactions = connection.execute(text("SELECT count(*) FROM transactions")).scalar_one()
    assert counts == {"posted": expected}
    assert transactions == expected
    verify = subprocess.run(
        [sys.executable, "-m", "ledgerflow", "verify", "--grace-s", "0"],
        env=processes.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
