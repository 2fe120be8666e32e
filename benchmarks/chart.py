"""The report's PNG: applied/s (left) and answer latency p50/p99 (right) per scenario and mode.

Drawn on matplotlib's Agg canvas, without pyplot, so no display or global state is needed.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from benchmarks.e2e import Figures
from benchmarks.runner import MODE_LABELS

COLORS = {"single": "#4C72B0", "batch": "#55A868", "waited": "#C44E52", "direct": "#8172B2"}
GROUP_WIDTH = 0.8
P99_ALPHA = 0.35
LATENCY_FLOOR_MS = 1.0  # log-scale bars start here, so their heights compare
Medians = dict[str, dict[str, Figures]]


def modes_of(medians: Medians) -> list[str]:
    """Every mode that ran, in the report's order."""
    present = {mode for by_mode in medians.values() for mode in by_mode}
    return [mode for mode in MODE_LABELS if mode in present]


def value(medians: Medians, scenario: str, mode: str, *path: str) -> float:
    """A median figure by its path, or NaN (no bar) when the phase did not run or had none."""
    found: Any = medians.get(scenario, {}).get(mode)
    for key in path:
        found = None if found is None else found.get(key)
    return math.nan if found is None else float(found)


def offsets(count: int) -> list[float]:
    width = GROUP_WIDTH / count
    return [(index - (count - 1) / 2) * width for index in range(count)]


def throughput_panel(axes: Axes, medians: Medians, modes: list[str]) -> None:
    scenarios = list(medians)
    width = GROUP_WIDTH / len(modes)
    for mode, offset in zip(modes, offsets(len(modes)), strict=True):
        heights = [value(medians, scenario, mode, "applied_per_s") for scenario in scenarios]
        bars = axes.bar(
            [index + offset for index in range(len(scenarios))],
            heights,
            width,
            label=MODE_LABELS[mode],
            color=COLORS[mode],
        )
        labels = ["" if math.isnan(h) else f"{h:,.0f}" for h in heights]
        axes.bar_label(bars, labels=labels, fontsize=8, padding=2)
    axes.set_xticks(range(len(scenarios)), scenarios)
    axes.set_ylabel("applied postings/s")
    axes.set_title("Throughput: applied/s (median of runs)")
    axes.legend(fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.07), ncol=len(modes))
    axes.margins(y=0.12)


def latency_panel(axes: Axes, medians: Medians, modes: list[str]) -> None:
    scenarios = list(medians)
    width = GROUP_WIDTH / len(modes)
    for mode, offset in zip(modes, offsets(len(modes)), strict=True):
        places = [index + offset for index in range(len(scenarios))]
        for percentile, alpha in (("p99", P99_ALPHA), ("p50", 1.0)):
            heights = [
                value(medians, scenario, mode, "request_latency_ms", percentile)
                for scenario in scenarios
            ]
            axes.bar(places, heights, width, color=COLORS[mode], alpha=alpha)
    axes.set_xticks(range(len(scenarios)), scenarios)
    axes.set_yscale("log")
    axes.set_ylim(bottom=LATENCY_FLOOR_MS)
    axes.yaxis.set_major_formatter(FuncFormatter(lambda ms, _: f"{ms:,g}"))
    axes.set_ylabel("ms (log scale)")
    axes.set_title(
        "Answer latency: p50 (solid), p99 (light)\nbatch: per 1,000; waited: until posted"
    )
    axes.legend(
        handles=[
            Patch(color="grey", label="p50"),
            Patch(color="grey", alpha=P99_ALPHA, label="p99"),
        ],
        fontsize=9,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.07),
        ncol=2,
    )


def write_chart(report: Figures, path: Path) -> None:
    medians: Medians = report["medians"]
    figure = Figure(figsize=(13, 5.5), layout="constrained")
    FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2)
    modes = modes_of(medians)
    if modes:
        throughput_panel(left, medians, modes)
        latency_panel(right, medians, modes)
    settings = report["settings"]
    figure.suptitle(
        f"LedgerFlow end-to-end, {report['started_at']}: {settings['postings']:,} postings "
        f"per phase, {settings['runs']} run(s), {settings['accounts']:,} accounts"
    )
    figure.savefig(path, dpi=110)
