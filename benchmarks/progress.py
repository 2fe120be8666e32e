"""Progress on stderr: one tqdm bar per phase (postings sent, then applied), and notes.

The bars are drawn only when stderr is a terminal (tqdm's `disable=None`), so CI logs
get the one-line notes without carriage-return noise.
"""

from __future__ import annotations

import sys

from tqdm import tqdm  # type: ignore[import-untyped]

MIN_INTERVAL_S = 0.5


def note(message: str) -> None:
    """A line on stderr that does not break the bar being drawn."""
    tqdm.write(message, file=sys.stderr)


class Bar:
    """A bar for one stage at a time: `stage` starts a new count towards a new total."""

    def __init__(self, title: str, stage: str, total: int, *, unit: str = "posting") -> None:
        self.title = title
        self.bar = tqdm(
            desc=f"{title} {stage}",
            total=total,
            unit=unit,
            file=sys.stderr,
            mininterval=MIN_INTERVAL_S,
            dynamic_ncols=True,
            leave=False,
            disable=None,
        )

    def stage(self, name: str, total: int) -> None:
        self.bar.set_description(f"{self.title} {name}", refresh=False)
        self.bar.reset(total=total)

    def add(self, count: int = 1) -> None:
        self.bar.update(count)

    def reach(self, done: int) -> None:
        """Move to `done` of the total (for counts read from the service)."""
        if done > self.bar.n:
            self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
