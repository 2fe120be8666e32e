"""Smoke-sized runs of the benchmarks, so the commands keep working.

Real processes on the test database and a private Redis: a queued API with a worker, and a
direct-mode API as the baseline; the benchmark serves its own HTTP ceiling and writes the
PostgreSQL ceiling into a scratch database beside the test database. The speeds are not
checked, only that every posting was accepted and applied, that the ceilings and CPU
figures were measured, and that the reports were written.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.integration.conftest import POSTGRES_URL, TEST_DATABASE
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


CEILING_DATABASE = f"{TEST_DATABASE}_ceiling"
SCENARIOS = ("uniform", "hot", "zipf")


@pytest.fixture
def ceiling_database_url() -> Iterator[str]:
    """The PostgreSQL ceiling's scratch database; the benchmark creates it, this drops it."""
    yield f"{POSTGRES_URL}/{CEILING_DATABASE}"
    with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {CEILING_DATABASE} WITH (FORCE)")


def _assert_cpu(figures: dict[str, Any], *, busy: tuple[str, ...]) -> None:
    """Every group was found (API only where one was under load), the `busy` groups spent
    CPU, and the total is the sum of the groups."""
    per_posting = figures["cpu"]["us_per_posting"]
    for group in busy:
        assert per_posting[group] > 0, (group, figures["cpu"])
    groups = [value for name, value in per_posting.items() if name != "total"]
    assert all(value is None or value >= 0 for value in groups), figures["cpu"]
    assert per_posting["total"] == pytest.approx(sum(v for v in groups if v), abs=1), figures
    pids = figures["cpu"]["pids"]
    assert pids["redis"] and pids["load_generator"] and figures["cpu"]["postmaster"]


def test_end_to_end_benchmark_smoke(
    processes: Processes, tmp_path: Path, ceiling_database_url: str
) -> None:
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
        "--ceiling-database-url",
        ceiling_database_url,
        "--smoke",
        "--out",
        str(out),
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    [report] = out.glob("smoke-*.json")
    assert list(out.glob("smoke-*.md")) and list(out.glob("smoke-*.png"))
    assert "| hot | queued batch |" in run.stdout
    assert "| any | HTTP ceiling |" in run.stdout and "| zipf | PostgreSQL ceiling |" in run.stdout
    written = json.loads(report.read_text())
    assert (written["all_applied"], written["timed_out"]) == (True, False)
    # One phase per scenario and mode, direct included, each with all its postings accepted.
    phases = {(phase["scenario"], phase["mode"]): phase for phase in written["runs"]}
    assert set(phases) == {
        (scenario, mode)
        for scenario in SCENARIOS
        for mode in ("single", "batch", "waited", "direct")
    }
    for (_, mode), phase in phases.items():
        sent = written["settings"]["batch_postings" if mode == "batch" else "postings"]
        assert phase["all_applied"], phase
        assert phase["accepted"] == phase["postings_sent"] == sent
        # Batch phases are one request of 200 postings: too little CPU for 10 ms ticks.
        busy = ("api", "load_generator", "postgresql") if mode != "batch" else ()
        _assert_cpu(phase, busy=busy)
        assert phase["cpu"]["pids"]["api"] and phase["cpu"]["pids"]["workers"], phase["cpu"]
        # Waited postings come back with their stages; no other mode waits.
        stages = phase["stages_ms"]
        if mode == "waited":
            assert list(stages) == ["intake", "enqueue", "dequeue", "apply", "wakeup", "answer"]
            assert all(stage["count"] > 0 and stage["p50"] >= 0 for stage in stages.values())
        else:
            assert stages == {}, (mode, stages)
    assert "Waited postings by stage" in run.stdout
    _assert_ceilings(written)


def _assert_ceilings(written: dict[str, Any]) -> None:
    """One HTTP ceiling and one PostgreSQL ceiling per scenario, complete and positive, and
    every phase's ratio to its ceiling (waited: to direct) above zero."""
    ceilings = {(c["ceiling"], c["scenario"]): c for c in written["ceilings"]}
    assert set(ceilings) == {("http", None), *(("postgresql", s) for s in SCENARIOS)}
    for (name, _), ceiling in ceilings.items():
        assert ceiling["complete"] and not ceiling["errors"], ceiling
        sent = written["settings"]["postings" if name == "http" else "batch_postings"]
        assert ceiling["postings"] == sent and ceiling["per_s"] > 0
        _assert_cpu(ceiling, busy=("api", "load_generator") if name == "http" else ())
        assert bool(ceiling["cpu"]["pids"]["api"]) == (name == "http"), ceiling["cpu"]
    for scenario in SCENARIOS:
        ratios = written["ratios"][scenario]
        for name in (
            "queued_single_vs_http_ceiling",
            "queued_batch_vs_postgresql_ceiling",
            "queued_waited_vs_direct_single",
        ):
            assert ratios[name]["median"] > 0, (scenario, name, ratios)
    assert written["ceilings_not_run"] == []


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
