"""The embedded default: `ledgerflow dev` with nothing configured runs the README's flow."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import free_port, transfer

# A `ledgerflow dev` process: left out of `make test-fast`.
pytestmark = pytest.mark.slow


def dev_key(log: Path) -> str:
    """The key `ledgerflow dev` printed on its first start, from its output."""
    for line in log.read_text().splitlines():
        if line.startswith("export LEDGERFLOW_API_KEY="):
            return line.split("=", 1)[1]
    raise AssertionError(f"no key in the dev output:\n{log.read_text()}")


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERFLOW_")}
    port = free_port()
    with open(tmp_path / "dev.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "ledgerflow", "dev", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp_path / "dev.log").read_text()
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "ledgerflow dev did not start within 30 s"
            time.sleep(0.1)
        yield url
    finally:
        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    assert (tmp_path / "ledgerflow-dev.db").exists()


def test_readme_flow_on_the_embedded_default(embedded: str, tmp_path: Path) -> None:
    key = dev_key(tmp_path / "dev.log")
    assert httpx.get(f"{embedded}/api/v1/accounts", timeout=10).status_code == 401
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=embedded, timeout=30, headers=headers) as client:
        accounts = [
            client.post(
                "/api/v1/accounts",
                json={"name": name, "account_type": kind, "currency": "USD"},
            ).json()["id"]
            for name, kind in (("User Wallet", "asset"), ("Merchant Settlement", "liability"))
        ]
        wallet, merchant = accounts
        body = transfer(wallet, merchant, "125.00", "PAY-1001", reference="PAY-1001")
        posted = client.post("/api/v1/transactions?wait=10", json=body)
        assert posted.status_code == 201, posted.text
        assert posted.json()["transaction"]["entries"][0]["amount"] == "125.00"
        assert client.get(f"/api/v1/accounts/{wallet}/balance").json()["balance"] == "125.00"
        assert client.post("/api/v1/transactions", json=body).status_code == 201
        batch = client.post(
            "/api/v1/transactions/batch",
            json={
                "transactions": [transfer(wallet, merchant, "1.00", f"B-{i}") for i in range(20)]
            },
        )
        assert [r["status"] for r in batch.json()["results"]] == ["queued"] * 20
        final = client.get("/api/v1/postings/B-19?wait=10").json()
        assert final["status"] == "posted"
        balance = client.get(f"/api/v1/accounts/{merchant}/balance").json()
        assert balance["balance"] == "145.00"
