"""`python -m benchmarks`: run the end-to-end benchmark against a running LedgerFlow.

Prints one Markdown row per mode, medians over `--runs`, and with `--json-out` writes the
raw figures of every run plus those medians. It starts nothing and drives only loopback
addresses. Exit 0 when every run finished, 3 when `--timeout-s` cut it short (what was
measured is still reported), 2 for bad arguments, 1 when the service cannot be benchmarked.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import sys
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.e2e import (
    BATCH_CONCURRENCY,
    BATCH_SIZE,
    FINAL_STATUSES,
    STATUS_SAMPLE,
    BenchmarkError,
    Deadline,
    Figures,
    Mode,
    Workload,
    loopback_url,
    run_all,
)

MEDIAN_FIGURES = (
    "postings_sent",
    "accepted",
    "accepted_per_s",
    "applied_per_s",
    "send_s",
    "applied_s",
    "client_cpu_share_send",
)
LATENCY_FIGURES = ("p50", "p95", "p99")
EXIT_TIMED_OUT = 3
CONNECTIONS_PER_CLIENT = 8


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer no smaller than `minimum`."""

    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}")
        return value

    return parse


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="loopback only")
    parser.add_argument("--postings", type=at_least(1), default=5000, help="per mode and run")
    parser.add_argument("--concurrency", type=at_least(1), default=64)
    parser.add_argument(
        "--pool-shards",
        type=at_least(1),
        default=None,
        help="spread the --concurrency connections over this many httpx clients "
        f"(default: one per {CONNECTIONS_PER_CLIENT} connections; 1 = one shared client)",
    )
    parser.add_argument("--accounts", type=at_least(2), default=1000, help="wallets per run")
    parser.add_argument("--mode", choices=("single", "batch", "both"), default="both")
    parser.add_argument("--runs", type=at_least(1), default=3)
    parser.add_argument("--timeout-s", type=float, default=300.0, help="for the whole benchmark")
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        args.url = loopback_url(args.url)
    except ValueError as error:
        parser.error(str(error))
    if args.timeout_s <= 0:
        parser.error("--timeout-s must be positive")
    return args


def median(values: list[Any]) -> float | None:
    present = [value for value in values if value is not None]
    return round(statistics.median(present), 2) if present else None


def totals(dicts: list[dict[str, int]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for counts in dicts:
        total.update(counts)
    return dict(total)


def summarise(results: list[Figures], mode: Mode) -> Figures:
    """Medians over the runs of one mode; error and status counts are totals."""
    runs = [result for result in results if result["mode"] == mode]
    summary: Figures = {"runs": len(runs), "complete_runs": sum(r["complete"] for r in runs)}
    for name in MEDIAN_FIGURES:
        summary[name] = median([run[name] for run in runs])
    summary["latency_ms"] = {
        name: median([run["latency_ms"][name] for run in runs]) for name in LATENCY_FIGURES
    }
    summary["errors_total"] = totals([run["errors"] for run in runs])
    summary["statuses_total"] = totals([run["statuses"] for run in runs])
    summary["unfinished_total"] = sum(run["unfinished"] for run in runs)
    summary["poll_errors_total"] = totals([run["poll_errors"] for run in runs])
    return summary


def shown(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}" if value.is_integer() else f"{value:.1f}"
    return str(value)


def error_text(errors: dict[str, int]) -> str:
    return ", ".join(f"{name} x{count}" for name, count in sorted(errors.items())) or "0"


COLUMNS = (
    "mode",
    "runs",
    "sent",
    "accepted",
    "errors",
    "accepted/s",
    "applied/s",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "sampled posted/rejected/failed/unfinished",
)


def markdown_table(summaries: dict[Mode, Figures]) -> str:
    """One row per mode: medians, except errors and statuses which are totals."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for mode, summary in summaries.items():
        statuses = summary["statuses_total"]
        finals = "/".join(str(statuses.get(status, 0)) for status in FINAL_STATUSES)
        cells = [
            mode,
            f"{summary['complete_runs']}/{summary['runs']}",
            shown(summary["postings_sent"]),
            shown(summary["accepted"]),
            error_text(summary["errors_total"]),
            shown(summary["accepted_per_s"]),
            shown(summary["applied_per_s"]),
            *(shown(summary["latency_ms"][name]) for name in LATENCY_FIGURES),
            f"{finals}/{summary['unfinished_total']}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


TABLE_NOTE = (
    "Medians over complete and cut-short runs; errors and statuses are totals over runs "
    f"(statuses of a sample of up to {STATUS_SAMPLE} keys per run). Batch latency is per "
    f"request of up to {BATCH_SIZE} postings. applied/s counts accepted postings from the "
    "first send to the moment the service reported nothing queued."
)


def write_json(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def modes_of(choice: str) -> list[Mode]:
    if choice == "single":
        return ["single"]
    if choice == "batch":
        return ["batch"]
    return ["single", "batch"]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    modes = modes_of(args.mode)
    workload = Workload(
        url=args.url,
        postings=args.postings,
        concurrency=args.concurrency,
        accounts=args.accounts,
        client_id=f"bench-{uuid.uuid4().hex[:12]}",
        pool_shards=args.pool_shards or math.ceil(args.concurrency / CONNECTIONS_PER_CLIENT),
    )
    started_at = datetime.now(UTC).isoformat()
    try:
        results = asyncio.run(
            run_all(workload, modes=modes, runs=args.runs, deadline=Deadline(args.timeout_s))
        )
    except BenchmarkError as error:
        print(f"benchmark not run: {error}", file=sys.stderr)
        return 1
    summaries = {mode: summarise(results, mode) for mode in modes}
    timed_out = len(results) < args.runs * len(modes) or not all(r["complete"] for r in results)
    print(markdown_table(summaries))
    print(f"\n{TABLE_NOTE}" + ("\nCUT SHORT by --timeout-s." if timed_out else ""))
    if args.json_out is not None:
        settings = {key: value for key, value in vars(args).items() if key != "json_out"}
        settings |= {
            "pool_shards": workload.pool_shards,
            "batch_size": BATCH_SIZE,
            "batch_concurrency": BATCH_CONCURRENCY,
        }
        write_json(
            args.json_out,
            {
                "benchmark": "ledgerflow-e2e",
                "started_at": started_at,
                "client_id": workload.client_id,
                "settings": settings,
                "timed_out": timed_out,
                "runs": results,
                "medians": summaries,
            },
        )
    return EXIT_TIMED_OUT if timed_out else 0


if __name__ == "__main__":
    sys.exit(main())
