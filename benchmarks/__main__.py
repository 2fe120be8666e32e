"""`python -m benchmarks`: the end-to-end benchmark of a running LedgerFlow.

Drives an already running service (and, with `--direct-url`, a second one started with
LEDGERFLOW_MODE=direct, the baseline) on loopback addresses only. For each run, scenario
(uniform, hot, zipf) and mode (single, batch, waited, plus direct) it measures accepted/s,
applied/s and latencies, and writes JSON, a Markdown table and a PNG chart under `--out`;
the table also goes to stdout, progress to stderr.

Each run also measures two ceilings, so that speed reads as a share of what this machine
does that day: the HTTP ceiling (benchmarks/ceiling_app.py, which the benchmark serves
itself on a free loopback port and ends by pid, unless given `--http-ceiling-url`) and the
PostgreSQL ceiling (the ledger's writes in batches of 1,000, in the scratch database
`--ceiling-database-url`, created if absent and emptied first; default: the database of
LEDGERFLOW_DATABASE_URL with `_ceiling` appended). Every phase reports the CPU time per
posting of the API, the workers, PostgreSQL, Redis and the load generator, from
/proc/<pid>/stat; their pids are found from the ports, the service's worker registry,
Redis's INFO and the postmaster, or named with `--api-pid` and `--worker-pid`.

Exit 0 when every posting of every phase was accepted and applied, 3 when `--timeout-s`
cut it short (what was measured is still reported), 4 when it finished but some postings
were not accepted or not applied, 2 for bad arguments, 1 when the service cannot be
benchmarked. `--smoke` is a few seconds' check of all of it, for CI.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import sys
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from benchmarks.e2e import BenchmarkError, Deadline, Figures, loopback_url
from benchmarks.postgres_ceiling import scratch_url
from benchmarks.report import markdown, write_report
from benchmarks.runner import (
    BATCH_CONCURRENCY,
    BATCH_SIZE,
    CONNECTIONS_PER_CLIENT,
    QUEUED_MODES,
    WAIT_S,
    Instruments,
    Results,
    Workload,
    run_all,
)
from benchmarks.scenarios import SCENARIOS
from benchmarks.sending import SAMPLE_MAX
from benchmarks.stats import ceiling_medians, medians, ratios

EXIT_UNREACHABLE = 1
EXIT_TIMED_OUT = 3
EXIT_NOT_APPLIED = 4
SMOKE_POSTINGS = 200
BATCH_PHASE_FACTOR = 8
SMOKE_ACCOUNTS = 100
SMOKE_TIMEOUT_S = 120.0
RESULTS_DIR = Path(__file__).resolve().parent / "results"

Choice = TypeVar("Choice", bound=str)


def at_least(minimum: float, kind: Callable[[str], float] = int) -> Callable[[str], float]:
    """An argparse type: a number of `kind` no smaller than `minimum`."""

    def parse(text: str) -> float:
        number = kind(text)
        if number < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum:g}")
        return number

    return parse


def listed(choices: Sequence[Choice]) -> Callable[[str], tuple[Choice, ...]]:
    """An argparse type: a comma-separated subset of `choices`, in the order given."""

    by_name = {str(choice): choice for choice in choices}

    def parse(text: str) -> tuple[Choice, ...]:
        names = [name.strip() for name in text.split(",") if name.strip()]
        if not names or any(name not in by_name for name in names):
            raise argparse.ArgumentTypeError(f"choose from {','.join(choices)}")
        return tuple(by_name[name] for name in dict.fromkeys(names))

    return parse


def parser() -> argparse.ArgumentParser:
    arguments = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    arguments.formatter_class = argparse.RawDescriptionHelpFormatter
    add = arguments.add_argument
    add("--url", default="http://127.0.0.1:8000", help="the queued service; loopback only")
    add("--direct-url", default=None, help="a service in direct mode, the baseline")
    add("--scenarios", type=listed(SCENARIOS), default=SCENARIOS, help="uniform,hot,zipf")
    add("--modes", type=listed(QUEUED_MODES), default=QUEUED_MODES, help="single,batch,waited")
    add("--postings", type=at_least(1), default=5000, help="per scenario, mode and run")
    add(
        "--batch-postings",
        type=at_least(1),
        default=None,
        help=f"per batch phase (default: {BATCH_PHASE_FACTOR} x --postings)",
    )
    add("--accounts", type=at_least(2), default=10_000, help="asset accounts per run")
    add("--runs", type=at_least(1), default=3)
    add("--concurrency", type=at_least(1), default=64, help="connections and tasks")
    add(
        "--pool-shards",
        type=at_least(1),
        default=None,
        help=f"httpx clients sharing the connections (default: one per {CONNECTIONS_PER_CLIENT})",
    )
    add("--rate", type=at_least(0.1, float), default=None, help="requests/s, single and waited")
    add("--out", type=Path, default=RESULTS_DIR, help="where the report files go")
    add("--timeout-s", type=at_least(1, float), default=900.0, help="for the whole benchmark")
    add("--smoke", action="store_true", help=f"{SMOKE_POSTINGS} postings, 1 run, for CI")
    instruments_arguments(arguments.add_argument_group("ceilings and CPU figures").add_argument)
    return arguments


def instruments_arguments(add: Callable[..., object]) -> None:
    add("--no-ceilings", action="store_true", help="run neither ceiling")
    add("--http-ceiling-url", default=None, help="a running ceiling_app (default: start one)")
    add("--http-ceiling-port", type=at_least(1), default=None, help="for the one started")
    add(
        "--ceiling-database-url",
        default=scratch_url(os.environ.get("LEDGERFLOW_DATABASE_URL")),
        help="scratch database of the PostgreSQL ceiling, emptied first "
        "(default: LEDGERFLOW_DATABASE_URL's database + _ceiling)",
    )
    add(
        "--redis-url",
        default=os.environ.get("LEDGERFLOW_REDIS_URL"),
        help="the service's Redis, for its pid (default: LEDGERFLOW_REDIS_URL)",
    )
    add("--api-pid", type=int, action="append", default=[], help="the queued API's (repeat)")
    add("--direct-api-pid", type=int, action="append", default=[], help="the direct API's")
    add("--worker-pid", type=int, action="append", default=[], help="a worker's (repeat)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    arguments = parser()
    args = arguments.parse_args(argv)
    try:
        args.url = loopback_url(args.url)
        args.direct_url = args.direct_url and loopback_url(args.direct_url)
        args.http_ceiling_url = args.http_ceiling_url and loopback_url(args.http_ceiling_url)
    except ValueError as error:
        arguments.error(str(error))
    if args.smoke:
        args.postings, args.batch_postings, args.runs = SMOKE_POSTINGS, SMOKE_POSTINGS, 1
        args.accounts = min(args.accounts, SMOKE_ACCOUNTS)
        args.timeout_s = min(args.timeout_s, SMOKE_TIMEOUT_S)
    args.batch_postings = args.batch_postings or BATCH_PHASE_FACTOR * args.postings
    args.pool_shards = args.pool_shards or math.ceil(args.concurrency / CONNECTIONS_PER_CLIENT)
    return args


def workload_of(args: argparse.Namespace) -> Workload:
    return Workload(
        url=args.url,
        direct_url=args.direct_url,
        scenarios=args.scenarios,
        modes=args.modes,
        postings=args.postings,
        batch_postings=args.batch_postings,
        concurrency=args.concurrency,
        accounts=args.accounts,
        rate=args.rate,
        runs=args.runs,
        pool_shards=args.pool_shards,
        client_id=f"bench-{uuid.uuid4().hex[:12]}",
        instruments=Instruments(
            ceilings=not args.no_ceilings,
            http_ceiling_url=args.http_ceiling_url,
            http_ceiling_port=args.http_ceiling_port,
            ceiling_database_url=args.ceiling_database_url,
            redis_url=args.redis_url,
            api_pids=tuple(args.api_pid),
            direct_api_pids=tuple(args.direct_api_pid),
            worker_pids=tuple(args.worker_pid),
        ),
    )


def ceilings_not_run(workload: Workload) -> list[str]:
    instruments = workload.instruments
    if not instruments.ceilings:
        return ["the ceilings (--no-ceilings)"]
    if instruments.ceiling_database_url is None:
        return ["the PostgreSQL ceiling (no --ceiling-database-url)"]
    return []


def machine() -> dict[str, str | int | None]:
    affinity = getattr(os, "sched_getaffinity", None)
    return {
        "nproc": len(affinity(0)) if affinity else os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def build_report(args: argparse.Namespace, workload: Workload, results: Results) -> Figures:
    """Settings, machine, every phase's raw figures, medians and ratios, and the verdict."""
    settings = {key: value for key, value in vars(args).items() if key != "out"}
    settings |= {
        "batch_size": BATCH_SIZE,
        "batch_concurrency": BATCH_CONCURRENCY,
        "wait_s": WAIT_S,
        "sample_max": SAMPLE_MAX,
    }
    phases = results.phases
    expected = workload.runs * len(workload.scenarios) * len(workload.phase_modes())
    return {
        "benchmark": "ledgerflow-e2e",
        "client_id": workload.client_id,
        "settings": settings,
        "machine": machine(),
        "timed_out": len(phases) < expected or not all(phase["complete"] for phase in phases),
        "all_applied": len(phases) == expected and all(phase["all_applied"] for phase in phases),
        "accounts": results.accounts,
        "runs": phases,
        "medians": medians(phases),
        "ceilings": results.ceilings,
        "ceiling_medians": ceiling_medians(results.ceilings),
        "ceilings_not_run": ceilings_not_run(workload),
        "ratios": ratios(phases, results.ceilings),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workload = workload_of(args)
    started = datetime.now(UTC)
    try:
        results = asyncio.run(run_all(workload, Deadline(args.timeout_s)))
    except BenchmarkError as error:
        print(f"benchmark not run: {error}", file=sys.stderr)
        return EXIT_UNREACHABLE
    report = {
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "timestamp": started.strftime("%Y%m%dT%H%M%SZ"),
        **build_report(args, workload, results),
    }
    prefix = "smoke" if args.smoke else "bench"
    paths = write_report(report, args.out, prefix=prefix, latest=not args.smoke)
    print(markdown(report))
    print("wrote " + ", ".join(str(path) for path in paths), file=sys.stderr)
    if report["timed_out"]:
        return EXIT_TIMED_OUT
    return 0 if report["all_applied"] else EXIT_NOT_APPLIED


if __name__ == "__main__":
    sys.exit(main())
