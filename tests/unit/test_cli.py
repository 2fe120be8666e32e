"""The `--partitions` option of `ledgerflow worker`."""

from __future__ import annotations

import pytest
import typer

from ledgerflow.cli import parse_partitions


def test_ranges_and_single_partitions() -> None:
    assert parse_partitions("0-3,7", 16) == [0, 1, 2, 3, 7]
    assert parse_partitions("5", 16) == [5]
    assert parse_partitions("3-3, 1", 16) == [1, 3]


@pytest.mark.parametrize("text", ["16", "0-16", "3-1", "-1", "a", "1-b"])
def test_partitions_outside_the_count_or_malformed_are_refused(text: str) -> None:
    with pytest.raises(typer.BadParameter):
        parse_partitions(text, 16)
