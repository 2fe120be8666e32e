"""Smoke-sized runs of the benchmarks, so the commands keep working.

Real processes on the test database and a private Redis: a queued API with a worker, and a
direct-mode API as the baseline. The figures are not checked, only that every posting
was accepted and applied and that the reports were written.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.processes import Processes

# Benchmark, soak and scaling runs in real processes: left out of `make test-fast`.
pytestmark = pytest.mark.slow


def _run(processes: Processes, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        env=processes.env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_end_to_end_benchmark_smoke(processes: Processes, tmp_path: Path) -> None:
    queued = processes.start_api()
    processes.start_worker()
    direct = processes.start_api(mode="direct")
    out = tmp_path / "results"
    run = _run(
        processes,
        "benchmarks",
        "--url",
        queued,
        "--direct-url",
        direct,
        "--smoke",
        "--out",
        str(out),
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    [report] = out.glob("smoke-*.json")
    assert list(out.glob("smoke-*.md")) and list(out.glob("smoke-*.png"))
    assert "| hot | queued batch |" in run.stdout
    written = json.loads(report.read_text())
    assert (written["all_applied"], written["timed_out"]) == (True, False)
    # One phase per scenario and mode, direct included, each with all its postings accepted.
    phases = {(phase["scenario"], phase["mode"]): phase for phase in written["runs"]}
    assert set(phases) == {
        (scenario, mode)
        for scenario in ("uniform", "hot", "zipf")
        for mode in ("single", "batch", "waited", "direct")
    }
    for (_, mode), phase in phases.items():
        sent = written["settings"]["batch_postings" if mode == "batch" else "postings"]
        assert phase["all_applied"], phase
        assert phase["accepted"] == phase["postings_sent"] == sent


def test_soak_smoke(processes: Processes, tmp_path: Path) -> None:
    api = processes.start_api()
    worker = processes.start_worker()
    api_pid = processes.started[-2].pid
    out = tmp_path / "soak.json"
    run = _run(
        processes,
        "benchmarks.soak",
        "--url",
        api,
        "--rate",
        "50",
        "--duration-s",
        "3",
        "--sample-s",
        "1",
        "--accounts",
        "20",
        "--pid",
        str(api_pid),
        "--pid",
        str(worker.pid),
        "--out",
        str(out),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["answers"].get("accepted", 0) > 0
    assert set(report["rss_growth_after_warmup"]) == {str(api_pid), str(worker.pid)}


def test_scaling_smoke(processes: Processes, tmp_path: Path) -> None:
    out = tmp_path / "scaling.json"
    run = _run(
        processes,
        "benchmarks.scaling",
        "--workers",
        "1",
        "--partitions",
        "2",
        "--postings",
        "300",
        "--accounts",
        "20",
        "--runs",
        "1",
        "--redis",
        processes.redis_url,
        "--out",
        str(out),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(out.read_text())["applied_per_s"]["1x2"] > 0
