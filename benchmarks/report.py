"""The benchmark's report: a JSON document, a Markdown table, a PNG chart, and copies.

Files go to `bench-<UTC timestamp>.{json,md,png}` and are copied to `latest.*`; a smoke
run writes `smoke-<timestamp>.*` only, so it never replaces a real run's figures.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from benchmarks.chart import write_chart
from benchmarks.cpu import GROUP_LABELS, GROUPS
from benchmarks.e2e import Figures
from benchmarks.runner import MODE_LABELS
from benchmarks.sending import SAMPLE_MAX
from benchmarks.stats import RATIO_OF_MODE

COLUMNS = (
    "scenario",
    "mode",
    "accepted/s",
    "applied/s",
    "÷ ceiling",
    "accept p50 ms",
    "accept p95 ms",
    "accept p99 ms",
    "accept→applied p50 ms",
    "accept→applied p99 ms",
    "e2e p50 ms",
    "e2e p99 ms",
    "errors",
)
RATIO_LABELS = {
    "queued_batch_vs_direct_single": "queued batch ÷ direct single applied/s",
    "queued_single_vs_direct_single": "queued single ÷ direct single applied/s",
    "queued_waited_vs_direct_single": "queued waited ÷ direct single applied/s",
    "queued_single_vs_http_ceiling": "queued single applied/s ÷ HTTP ceiling requests/s",
    "queued_batch_vs_postgresql_ceiling": "queued batch ÷ PostgreSQL ceiling postings/s",
}
RATIO_BASES = {
    "queued_single_vs_http_ceiling": "HTTP",
    "queued_batch_vs_postgresql_ceiling": "PostgreSQL",
    "queued_waited_vs_direct_single": "direct",
}
CEILING_LABELS = {"http": "HTTP ceiling", "postgresql": "PostgreSQL ceiling"}


def shown(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def shown_ratio(value: float | None) -> str:
    """A ratio: two decimals below 1, where one would hide the difference."""
    return shown(value) if value is None or value >= 1 else f"{value:.2f}"


def ratio_cell(ratios: dict[str, dict[str, Figures]], scenario: str, mode: str) -> str:
    """The phase's median ratio to its ceiling (waited: to direct), named by its base."""
    name = RATIO_OF_MODE.get(mode)
    entry = ratios.get(scenario, {}).get(name or "")
    if name is None or entry is None:
        return "-"
    return f"{shown_ratio(entry['median'])} ({RATIO_BASES[name]})"


def trouble(summary: Figures, mode: str) -> str:
    """Errors, requests sent again, waits that ran out, and sampled postings not posted,
    as one cell."""
    counts = dict(summary["errors"])
    for name, count in summary["retried"].items():
        counts[f"{name} (retried)"] = count
    if mode == "waited" and summary["answered"].get("queued"):
        counts["202 wait ran out"] = summary["answered"]["queued"]
    for status in ("rejected", "failed"):
        if summary["statuses"].get(status):
            counts[f"sample {status}"] = summary["statuses"][status]
    if summary["unfinished"]:
        counts["sample unfinished"] = summary["unfinished"]
    return ", ".join(f"{name} x{count}" for name, count in sorted(counts.items())) or "0"


def table_row(scenario: str, mode: str, summary: Figures, ratios: Figures) -> list[str]:
    request = summary["request_latency_ms"]
    applied = summary["accept_to_applied_ms"]
    waited = mode == "waited"
    accept = [None] * 3 if waited else [request[p] for p in ("p50", "p95", "p99")]
    e2e = [request["p50"], request["p99"]] if waited else [None, None]
    return [
        scenario,
        MODE_LABELS[mode],
        shown(summary["accepted_per_s"]),
        shown(summary["applied_per_s"]),
        ratio_cell(ratios, scenario, mode),
        *map(shown, accept),
        shown(applied["p50"]),
        shown(applied["p99"]),
        *map(shown, e2e),
        trouble(summary, mode),
    ]


def ratio_lines(ratios: dict[str, dict[str, Figures]]) -> list[str]:
    lines = []
    for scenario, by_name in ratios.items():
        parts = [
            f"{RATIO_LABELS[name]} = **{shown_ratio(entry['median'])}** "
            f"(per run: {', '.join(shown_ratio(value) for value in entry['per_run'])})"
            for name, entry in by_name.items()
        ]
        lines.append(f"- {scenario}: " + "; ".join(parts))
    return lines


def ceiling_lines(ceilings: dict[str, dict[str, Figures]]) -> list[str]:
    """The ceilings' rates: what this machine does with HTTP alone and PostgreSQL alone."""
    lines = [
        "| ceiling | scenario | rate/s | complete runs | errors |",
        "|---|---|---|---|---|",
    ]
    for name, by_scenario in ceilings.items():
        for scenario, summary in by_scenario.items():
            errors = ", ".join(f"{e} x{n}" for e, n in sorted(summary["errors"].items()))
            lines.append(
                f"| {CEILING_LABELS[name]} | {scenario} | {shown(summary['per_s'])} | "
                f"{summary['complete_runs']}/{summary['runs']} | {errors or '0'} |"
            )
    return lines


def cpu_row(scenario: str, phase: str, per_posting: Figures) -> str:
    cells = [shown(per_posting.get(group)) for group in (*GROUPS, "total")]
    return f"| {scenario} | {phase} | " + " | ".join(cells) + " |"


def cpu_lines(report: Figures) -> list[str]:
    """µs of CPU per posting by process group, for the ceilings and every phase."""
    labels = [GROUP_LABELS[group] for group in GROUPS]
    lines = [
        "| scenario | phase | " + " | ".join(labels) + " | total |",
        "|" + "---|" * (len(labels) + 3),
    ]
    ceilings = report.get("ceiling_medians", {})
    for scenario, summary in ceilings.get("http", {}).items():
        lines.append(cpu_row(scenario, CEILING_LABELS["http"], summary["cpu_us_per_posting"]))
    for scenario, by_mode in report["medians"].items():
        postgresql = ceilings.get("postgresql", {}).get(scenario)
        if postgresql is not None:
            label = CEILING_LABELS["postgresql"]
            lines.append(cpu_row(scenario, label, postgresql["cpu_us_per_posting"]))
        for mode, summary in by_mode.items():
            lines.append(cpu_row(scenario, MODE_LABELS[mode], summary["cpu_us_per_posting"]))
    return lines


def settings_line(report: Figures) -> str:
    settings, machine = report["settings"], report["machine"]
    rate = settings["rate"]
    return (
        f"{settings['postings']:,} postings per phase "
        f"(batch: {settings.get('batch_postings') or settings['postings']:,}), "
        f"{settings['runs']} run(s), medians; "
        f"{settings['accounts']:,} accounts; concurrency {settings['concurrency']} "
        f"(batch: {settings['batch_concurrency']} x {settings['batch_size']:,}); "
        f"{f'{rate:g} requests/s' if rate else 'unthrottled'}; "
        f"{machine['nproc']} CPUs, Python {machine['python']}."
    )


def notes() -> list[str]:
    return [
        "applied/s: accepted postings from the first request until the service reported "
        "nothing queued (`GET /api/v1/ops/partitions`).",
        "accept latency: each request, sent to answered (batch: per request of up to "
        "1,000 postings). e2e: the whole `?wait=5` request, until posted.",
        f"accept→applied: for up to {SAMPLE_MAX} postings sampled evenly over the phase, "
        "from the 202 answer until a long poll of the status URL, started at once, "
        "answered final; an upper bound (it includes that poll's round trip). Direct "
        "answers, and waited ones that did not run out, are final already: they have none.",
        "Ratios divide applied/s of the same run; the figure shown is their median. "
        "÷ ceiling: single over the HTTP ceiling's requests/s, batch over the PostgreSQL "
        "ceiling's postings/s of the same scenario, waited over direct single.",
        "HTTP ceiling: `benchmarks/ceiling_app.py` (FastAPI validating the posting body with "
        "the service's pydantic schema, answering 202, storing nothing), served as "
        "`ledgerflow serve` serves the service and sent the single mode's requests, unpaced. "
        "PostgreSQL ceiling: the ledger's writes (accounts locked in id order, transactions "
        "and entries inserted, totals updated) in batches of 1,000 from one process on the "
        "real schema in a scratch database.",
        "CPU: utime + stime of each process (/proc/<pid>/stat) over the phase, in µs per "
        "accepted posting; - where a group's processes were not found. Exact to 10 ms per "
        "phase and group.",
    ]


def stage_lines(report: Figures) -> list[str]:
    """One row per scenario and mode whose answers gave stages, one column per stage."""
    rows = [
        (scenario, mode, summary["stages_ms"])
        for scenario, by_mode in report["medians"].items()
        for mode, summary in by_mode.items()
        if summary.get("stages_ms")
    ]
    if not rows:
        return []
    names = list(dict.fromkeys(name for _, _, stages in rows for name in stages))
    lines = [
        "| scenario | mode | " + " | ".join(names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    for scenario, mode, stages in rows:
        cells = [
            f"{_ms(stages[name]['p50'])} / {_ms(stages[name]['p99'])}" if name in stages else "-"
            for name in names
        ]
        lines.append(f"| {scenario} | {mode} | " + " | ".join(cells) + " |")
    return lines


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def markdown(report: Figures) -> str:
    lines = [
        f"# LedgerFlow end-to-end benchmark, {report['started_at']}",
        "",
        settings_line(report),
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for scenario, by_mode in report["medians"].items():
        for mode, summary in by_mode.items():
            row = table_row(scenario, mode, summary, report["ratios"])
            lines.append("| " + " | ".join(row) + " |")
    if report.get("ceiling_medians"):
        lines += ["", "Ceilings, run in the same invocation:", ""]
        lines += ceiling_lines(report["ceiling_medians"])
    for missing in report.get("ceilings_not_run", []):
        lines += ["", f"Not run: {missing}."]
    lines += ["", "CPU per posting, µs, by process group:", "", *cpu_lines(report)]
    stages = stage_lines(report)
    if stages:
        lines += ["", "Waited postings by stage, ms (p50 / p99; the service's Server-Timing):", ""]
        lines += stages
    if report["ratios"]:
        lines += ["", "Ratios (applied/s):", "", *ratio_lines(report["ratios"])]
    if report["timed_out"]:
        lines += ["", "**Cut short by --timeout-s**: some phases are missing or partial."]
    lines += ["", *(f"- {note}" for note in notes())]
    return "\n".join(lines) + "\n"


def write_report(report: Figures, out: Path, *, prefix: str, latest: bool) -> list[Path]:
    """Write the JSON, Markdown and PNG files (and the latest.* copies); their paths."""
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{prefix}-{report['timestamp']}"
    paths = [stem.with_suffix(".json"), stem.with_suffix(".md"), stem.with_suffix(".png")]
    paths[0].write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    paths[1].write_text(markdown(report), encoding="utf-8")
    write_chart(report, paths[2])
    if not latest:
        return paths
    copies = [out / f"latest{path.suffix}" for path in paths]
    for path, copy in zip(paths, copies, strict=True):
        shutil.copyfile(path, copy)
    return [*paths, *copies]
