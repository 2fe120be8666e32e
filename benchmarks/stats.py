"""Figures of one phase, medians over runs, and the ratios to the direct mode and ceilings.

A phase is one run of one scenario in one mode. Rates count from the first request sent:
accepted/s until the last answer arrived, applied/s until the service reported nothing
queued. Latencies are nearest-rank percentiles in milliseconds. Medians are taken over
the runs; counts of errors and statuses are totals. A ratio divides two rates of the
same run (and scenario); the HTTP ceiling, scenario-blind, serves every scenario.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from typing import Any

from benchmarks.cpu import GROUPS
from benchmarks.e2e import FINAL_STATUSES, Figures
from benchmarks.sending import Sampler, Sending

MEDIAN_FIGURES = (
    "accepted_per_s",
    "applied_per_s",
    "send_s",
    "applied_s",
    "client_cpu_share_send",
)
LATENCIES = ("request_latency_ms", "accept_to_applied_ms")
PERCENTILES = ("p50", "p95", "p99")
TOTALS = ("errors", "retried", "answered", "statuses", "poll_errors")
CPU_FIGURES = (*GROUPS, "total")
# name: (queued mode whose applied/s is divided, the rate of the same run it is divided by)
RATIOS = {
    "queued_batch_vs_direct_single": ("batch", "direct"),
    "queued_single_vs_direct_single": ("single", "direct"),
    "queued_waited_vs_direct_single": ("waited", "direct"),
    "queued_single_vs_http_ceiling": ("single", "http_ceiling"),
    "queued_batch_vs_postgresql_ceiling": ("batch", "postgresql_ceiling"),
}
# The ratio each mode's row of the report shows: to its ceiling, or waited to direct.
RATIO_OF_MODE = {
    "single": "queued_single_vs_http_ceiling",
    "batch": "queued_batch_vs_postgresql_ceiling",
    "waited": "queued_waited_vs_direct_single",
}


def percentile_ms(sorted_s: list[float], percent: float) -> float:
    """Nearest-rank percentile of sorted seconds, in milliseconds."""
    rank = max(1, math.ceil(percent / 100 * len(sorted_s)))
    return round(sorted_s[rank - 1] * 1000, 2)


def latency_summary(latencies_s: list[float]) -> dict[str, float | int | None]:
    ordered = sorted(latencies_s)
    if not ordered:
        return {"count": 0, "p50": None, "p95": None, "p99": None, "max": None}
    return {
        "count": len(ordered),
        "p50": percentile_ms(ordered, 50),
        "p95": percentile_ms(ordered, 95),
        "p99": percentile_ms(ordered, 99),
        "max": percentile_ms(ordered, 100),
    }


def rate(count: int, seconds: float | None) -> float | None:
    return round(count / seconds, 1) if seconds else None


def rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


def phase_figures(
    sending: Sending, sampler: Sampler, *, drained_at: float | None, drain_errors: Counter[str]
) -> Figures:
    """The raw figures of one phase; `drained_at` is when nothing was queued any more."""
    send_s = None if sending.finished is None else sending.finished - sending.started
    applied_s = None if drained_at is None else drained_at - sending.started
    applied = sending.accepted if drained_at is not None else 0
    return {
        "requests_sent": sending.requests_sent,
        "postings_sent": sending.postings_sent,
        "accepted": sending.accepted,
        "errors": dict(sending.errors),
        "retried": dict(sending.retried),
        "answered": dict(sending.answered),
        "send_s": rounded(send_s),
        # Near 1.0, the benchmark client itself, not the service, set the accept rate.
        "client_cpu_share_send": round(sending.cpu_s / send_s, 2) if send_s else None,
        "accepted_per_s": rate(sending.accepted, send_s),
        "applied_s": rounded(applied_s),
        "applied_per_s": rate(applied, applied_s),
        "request_latency_ms": latency_summary(sending.latencies_s),
        "accept_to_applied_ms": latency_summary(sampler.latencies_s),
        # Waited postings: each stage of the service's own account (Server-Timing).
        "stages_ms": {name: latency_summary(values) for name, values in sending.stages_s.items()},
        "sampled": sampler.sampled,
        "statuses": {status: sampler.statuses[status] for status in FINAL_STATUSES},
        "unfinished": sampler.unfinished,
        "poll_errors": dict(sampler.poll_errors + drain_errors),
    }


def all_applied(figures: Figures, *, postings: int) -> bool:
    """Every posting sent, accepted without error, and (as far as sampled) posted."""
    return (
        figures["postings_sent"] == postings
        and figures["accepted"] == postings
        and not figures["errors"]
        and figures["applied_per_s"] is not None
        and figures["unfinished"] == 0
        and figures["statuses"]["posted"] == figures["sampled"]
    )


def median(values: list[Any], *, digits: int = 2) -> float | None:
    present = [value for value in values if value is not None]
    return round(statistics.median(present), digits) if present else None


def totals(dicts: list[dict[str, int]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for counts in dicts:
        total.update(counts)
    return dict(total)


def summarise(runs: list[Figures]) -> Figures:
    """Medians over the runs of one scenario and mode; counts are totals."""
    summary: Figures = {
        "runs": len(runs),
        "all_applied_runs": sum(run["all_applied"] for run in runs),
    }
    for name in MEDIAN_FIGURES:
        summary[name] = median([run[name] for run in runs])
    for latency in LATENCIES:
        summary[latency] = {p: median([run[latency][p] for run in runs]) for p in PERCENTILES}
    for name in TOTALS:
        summary[name] = totals([run[name] for run in runs])
    summary["unfinished"] = sum(run["unfinished"] for run in runs)
    summary["cpu_us_per_posting"] = cpu_medians(runs)
    summary["stages_ms"] = stage_medians(runs)
    return summary


def stage_medians(runs: list[Figures]) -> dict[str, dict[str, float | None]]:
    """{stage: {p50, p99}}: medians over the runs of each stage's percentiles."""
    names = list(dict.fromkeys(name for run in runs for name in run.get("stages_ms", {})))
    return {
        name: {
            p: median(
                [run["stages_ms"][name][p] for run in runs if name in run.get("stages_ms", {})]
            )
            for p in ("p50", "p99")
        }
        for name in names
    }


def cpu_medians(runs: list[Figures]) -> dict[str, float | None]:
    """Median µs per posting of each process group, and of all, over the runs."""
    return {
        name: median([run["cpu"]["us_per_posting"][name] for run in runs if "cpu" in run])
        for name in CPU_FIGURES
    }


def ceiling_summary(runs: list[Figures]) -> Figures:
    return {
        "runs": len(runs),
        "complete_runs": sum(run["complete"] for run in runs),
        "per_s": median([run["per_s"] for run in runs]),
        "errors": totals([run["errors"] for run in runs]),
        "cpu_us_per_posting": cpu_medians(runs),
    }


def ceiling_medians(ceilings: list[Figures]) -> dict[str, dict[str, Figures]]:
    """{ceiling: {scenario: summary}}; the HTTP ceiling's only scenario is "any"."""
    grouped: dict[str, dict[str, list[Figures]]] = {}
    for ceiling in ceilings:
        scenario = ceiling["scenario"] or "any"
        grouped.setdefault(ceiling["ceiling"], {}).setdefault(scenario, []).append(ceiling)
    return {
        name: {scenario: ceiling_summary(runs) for scenario, runs in by_scenario.items()}
        for name, by_scenario in grouped.items()
    }


def medians(results: list[Figures]) -> dict[str, dict[str, Figures]]:
    """{scenario: {mode: summary}}, in the order the phases ran."""
    grouped: dict[str, dict[str, list[Figures]]] = {}
    for result in results:
        grouped.setdefault(result["scenario"], {}).setdefault(result["mode"], []).append(result)
    return {
        scenario: {mode: summarise(runs) for mode, runs in modes.items()}
        for scenario, modes in grouped.items()
    }


def rates_of(results: list[Figures], ceilings: list[Figures]) -> dict[tuple[int, str, str], Any]:
    """{(run, scenario, mode or `<ceiling>_ceiling`): rate}: applied/s of the phases, the
    ceilings' rates; the HTTP ceiling's under every scenario of its run."""
    rates = {(r["run"], r["scenario"], r["mode"]): r["applied_per_s"] for r in results}
    for ceiling in ceilings:
        run = ceiling["run"]
        scenarios = (
            [ceiling["scenario"]]
            if ceiling["scenario"]
            else [r["scenario"] for r in results if r["run"] == run]
        )
        for scenario in scenarios:
            rates[run, scenario, f"{ceiling['ceiling']}_ceiling"] = ceiling["per_s"]
    return rates


def ratios(
    results: list[Figures], ceilings: list[Figures] | None = None
) -> dict[str, dict[str, Figures]]:
    """{scenario: {ratio: {per_run, median}}}: applied/s of a queued mode over the rate of
    direct single or of a ceiling, both from the same run."""
    rates = rates_of(results, ceilings or [])
    found: dict[str, dict[str, Figures]] = {}
    for run, scenario, mode in rates:
        for name, (queued, base) in RATIOS.items():
            value, base_value = rates[run, scenario, mode], rates.get((run, scenario, base))
            if mode == queued and value and base_value:
                entry = found.setdefault(scenario, {}).setdefault(name, {"per_run": []})
                entry["per_run"].append(round(value / base_value, 3))
    ordered: dict[str, dict[str, Figures]] = {}
    for scenario, by_name in found.items():
        ordered[scenario] = {name: by_name[name] for name in RATIOS if name in by_name}
        for entry in ordered[scenario].values():
            entry["median"] = median(entry["per_run"], digits=3)
    return ordered
