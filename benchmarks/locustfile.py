"""Locust load test of LedgerFlow's POST /api/v1/transactions, with FastHttpUser.

Every task posts "1.00" USD from a wallet (asset) to a settlement account (liability) under a
fresh idempotency key: mostly fire-and-forget (202 queued), and one in four with `?wait=5`
(201 once posted, 202 when five seconds were not enough). With WALLET_ACCOUNT_ID and
SETTLEMENT_ACCOUNT_ID set, every user posts between those two accounts, which makes them hot;
without them each user opens its own pair in on_start. Only loopback hosts are driven.

    .venv/bin/locust -f benchmarks/locustfile.py --host http://127.0.0.1:8000 \\
        --headless --users 50 --spawn-rate 10 --run-time 20s
"""

from __future__ import annotations

import logging
import os
import uuid
from typing import Any

from locust import FastHttpUser, constant, events, task
from locust.env import Environment
from locust.exception import StopUser

from benchmarks.e2e import AMOUNT, API_PREFIX, CURRENCY, key_headers, loopback_url

WAIT_S = 5
CLIENT_ID = "locust"


def refuse_remote_host(environment: Environment, **_: Any) -> None:
    """Stop at once, before any request, unless the target is a loopback address."""
    try:
        loopback_url(environment.host or "")
    except ValueError as error:
        logging.error("%s", error)
        environment.process_exit_code = 2
        if environment.runner is not None:
            environment.runner.quit()


events.test_start.add_listener(refuse_remote_host)  # type: ignore[no-untyped-call]


class LedgerUser(FastHttpUser):
    """A client that keeps posting transfers between one wallet and one settlement account."""

    wait_time = constant(0)

    def on_start(self) -> None:
        try:
            loopback_url(self.host or "")
        except ValueError as error:
            raise StopUser() from error
        self.headers = {"X-Client-Id": CLIENT_ID, **key_headers()}
        wallet = os.environ.get("WALLET_ACCOUNT_ID")
        settlement = os.environ.get("SETTLEMENT_ACCOUNT_ID")
        self.wallet_id = wallet or self.open_account("locust wallet", "asset")
        self.settlement_id = settlement or self.open_account("locust settlement", "liability")

    def open_account(self, name: str, account_type: str) -> str:
        body = {"name": name, "account_type": account_type, "currency": CURRENCY}
        with self.client.post(
            f"{API_PREFIX}/accounts", json=body, headers=self.headers, catch_response=True
        ) as response:
            if response.status_code != 201:
                response.failure(f"account not opened: {response.status_code}")
                raise StopUser()
            account_id: str = response.json()["id"]
            return account_id

    def transfer(self) -> dict[str, Any]:
        return {
            "idempotency_key": uuid.uuid4().hex,
            "currency": CURRENCY,
            "entries": [
                {"account_id": self.wallet_id, "direction": "debit", "amount": AMOUNT},
                {"account_id": self.settlement_id, "direction": "credit", "amount": AMOUNT},
            ],
        }

    @task(3)
    def post_transaction(self) -> None:
        with self.client.post(
            f"{API_PREFIX}/transactions",
            json=self.transfer(),
            headers=self.headers,
            catch_response=True,
        ) as response:
            if response.status_code != 202:
                response.failure(f"expected 202 queued, got {response.status_code}")

    @task(1)
    def post_transaction_and_wait(self) -> None:
        with self.client.post(
            f"{API_PREFIX}/transactions?wait={WAIT_S}",
            json=self.transfer(),
            headers=self.headers,
            name=f"{API_PREFIX}/transactions?wait={WAIT_S}",
            catch_response=True,
        ) as response:
            if response.status_code not in (201, 202):
                response.failure(f"expected 201 posted or 202 queued, got {response.status_code}")
