"""The compose file runs any number of workers: `docker compose up --scale worker=N`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def _services() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())["services"]
    return services


def test_the_worker_service_can_be_scaled() -> None:
    worker = _services()["worker"]
    # A fixed container name or a published port would make a second replica fail.
    assert "container_name" not in worker
    assert "ports" not in worker
    assert worker["command"] == ["ledgerflow", "worker"]  # takes a fair share, not pinned


def test_workers_stop_gracefully_and_start_after_the_schema() -> None:
    worker = _services()["worker"]
    assert worker["stop_signal"] == "SIGTERM"
    assert int(worker["stop_grace_period"].rstrip("s")) >= 10
    assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_every_process_of_a_deployment_agrees_on_the_partition_count() -> None:
    services = _services()
    environments = [services[name]["environment"] for name in ("migrate", "api", "worker")]
    assert len({env["LEDGERFLOW_PARTITIONS"] for env in environments}) == 1
