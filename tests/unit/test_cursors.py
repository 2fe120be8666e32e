"""Cursors: the store takes back exactly what it hands out, and `CURSOR_PATTERN` (which the
OpenAPI document states) says exactly which strings those are."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger_core.errors import InvalidCursor
from ledger_core.model import CURSOR_PATTERN
from ledger_core.store.rows import decode_cursor, encode_cursor

PATTERN = re.compile(CURSOR_PATTERN)


@given(st.integers(min_value=1, max_value=10**18 - 1))
def test_every_cursor_handed_out_matches_and_comes_back(position: int) -> None:
    cursor = encode_cursor(position)
    assert PATTERN.fullmatch(cursor)
    assert decode_cursor(cursor) == position


@given(st.from_regex(PATTERN, fullmatch=True))
def test_every_string_of_the_pattern_is_taken(cursor: str) -> None:
    assert decode_cursor(cursor) >= 0


@given(st.text(max_size=40))
def test_a_string_outside_the_pattern_is_refused(cursor: str) -> None:
    if PATTERN.fullmatch(cursor):
        assert decode_cursor(cursor) >= 0
    else:
        with pytest.raises(InvalidCursor):
            decode_cursor(cursor)


@pytest.mark.parametrize(
    "cursor",
    [
        "cDkyMjMzNzIwMzY4NTQ3NzU4MDg",  # p9223372036854775808: one past BIGINT
        "cDEwMDAwMDAwMDAwMDAwMDAwMDA",  # p1000000000000000000: 19 digits
        "cC0x",  # p-1
        "cDEyMw0K",  # p123 and a line break
        "cDEyMw==",  # p123, padded
        "cDEy Mw",  # p123 with a space, which base64 decoding would skip
        "cDEyMw\n",
        "not-a-cursor",
    ],
)
def test_cursors_this_service_never_made_are_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor)


def test_no_cursor_is_the_first_page() -> None:
    assert decode_cursor(None) == 0
    assert decode_cursor("") == 0
