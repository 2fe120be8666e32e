"""How the API reads what a client sends, before any route: the strict JSON parse and its
bounds, the Host check, the `Prefer: wait` preference and how details quote a client's text."""

from __future__ import annotations

import importlib
import json
import pkgutil
import uuid
from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute

import api.routes
from api.answers import wait_seconds
from api.edge import Edge, host_name
from api.parsing import OBJECTS_MAX, JsonRoute, declares_json, parse_json
from api.schemas import BatchCreate, TransactionCreate
from ledger_core.errors import (
    InvalidEntries,
    InvalidRequest,
    LedgerError,
    MalformedJson,
    quoted,
)
from ledger_core.settings import Settings

POSTING = {
    "idempotency_key": "IK-1",
    "currency": "USD",
    "entries": [
        {"account_id": str(uuid.uuid4()), "direction": "debit", "amount": "1.00"},
        {"account_id": str(uuid.uuid4()), "direction": "credit", "amount": "1.00"},
    ],
    "metadata": {"order": "A-1"},
}
POSTING_BOUND = OBJECTS_MAX[TransactionCreate]
BATCH_BOUND = OBJECTS_MAX[BatchCreate]


def _refusal(body: bytes, bound: Any = None) -> LedgerError:
    with pytest.raises(LedgerError) as raised:
        parse_json(body, bound)
    return raised.value


def test_a_posting_parses_as_json_loads_would() -> None:
    body = json.dumps(POSTING).encode()
    assert parse_json(body, POSTING_BOUND) == json.loads(body)
    assert parse_json(b'[1, "x", null, true, {"a": {"b": []}}]') == [
        1,
        "x",
        None,
        True,
        {"a": {"b": []}},
    ]
    assert parse_json(b"null") is None


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b'{"amount": "1.00", "amount": "9.00"}', "'amount' appears twice"),
        (b'{"a": {"k": 1, "k": 1}}', "'k' appears twice"),
        (json.dumps(POSTING).encode("utf-16"), "not UTF-8"),  # with its byte order mark
        (json.dumps(POSTING).encode("utf-16-le"), "not valid JSON"),
        (json.dumps(POSTING).encode("utf-32"), "not UTF-8"),
        ('{"reference": "caf\u00e9"}'.encode("latin-1"), "not UTF-8"),
        (b"\xef\xbb\xbf" + json.dumps(POSTING).encode(), "not valid JSON"),  # a UTF-8 BOM
        (b'{"amount": NaN}', "NaN is not a JSON value"),
        (b'{"amount": -Infinity}', "-Infinity is not a JSON value"),
        (b"[" * 10_000 + b"]" * 10_000, "too deeply"),
        (b'{"a": ' * 10_000 + b"1" + b"}" * 10_000, "too deeply"),
        (b'{"n": ' + b"9" * 5_000 + b"}", "number too long"),
        (b'{"idempotency_key": "x", ', "not valid JSON"),
        (b"", "not valid JSON"),
    ],
)
def test_what_json_loads_lets_through_is_malformed(body: bytes, detail: str) -> None:
    refusal = _refusal(body)
    assert isinstance(refusal, MalformedJson)
    assert refusal.code == "malformed_json"
    assert refusal.http_status == 400
    assert detail in refusal.detail


def test_a_duplicate_key_is_quoted_cut_short() -> None:
    key = "k" * 300_000
    refusal = _refusal(json.dumps({key: 1}).replace("}", f', "{key}": 2}}').encode())
    assert isinstance(refusal, MalformedJson)
    assert len(refusal.detail) < 200
    assert "300000 characters" in refusal.detail


def test_a_posting_body_stops_at_the_first_object_past_its_bound() -> None:
    """Garbage after the 67th object is never reached: the parse stopped before it."""
    entry = json.dumps(POSTING["entries"][0])
    body = ('{"currency": "USD", "entries": [' + f"{entry}, " * 67 + "garbage").encode()
    refusal = _refusal(body, POSTING_BOUND)
    assert isinstance(refusal, InvalidEntries)
    assert "2 to 64 entries" in refusal.detail


def test_sixty_four_entries_and_metadata_are_within_the_bound() -> None:
    entries = [POSTING["entries"][0]] * 63 + [POSTING["entries"][1]]
    body = json.dumps({**POSTING, "entries": entries}).encode()
    assert len(parse_json(body, POSTING_BOUND)["entries"]) == 64


def test_forty_thousand_entries_are_refused_without_building_them() -> None:
    entries = [POSTING["entries"][0]] * 40_000
    body = json.dumps({**POSTING, "entries": entries}).encode()
    assert isinstance(_refusal(body, POSTING_BOUND), InvalidEntries)


def test_a_batch_body_is_bounded_by_a_thousand_full_postings() -> None:
    objects_max, _ = BATCH_BOUND
    assert objects_max == 1 + 1000 * 66
    body = b'{"transactions": [' + b"{}, " * (objects_max + 1) + b"garbage"
    refusal = _refusal(body, BATCH_BOUND)
    assert isinstance(refusal, InvalidRequest)
    assert "at most 1000 transactions" in refusal.detail


def test_a_refused_parse_leaves_the_next_one_unbounded() -> None:
    _refusal(b"[" + b"{}, " * 100 + b"{}]", POSTING_BOUND)
    assert len(parse_json(b"[" + b"{}, " * 100 + b"{}]")) == 101


@pytest.mark.parametrize(
    ("content_type", "declared"),
    [
        ("application/json", True),
        ("application/json; charset=utf-8", True),
        ("Application/JSON", True),
        ("application/merge-patch+json", True),
        ("text/plain", False),
        ("text/json", False),
        (None, False),
    ],
)
def test_which_bodies_are_json(content_type: str | None, declared: bool) -> None:
    assert declares_json(content_type) is declared


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("localhost:8000", "localhost"),
        ("127.0.0.1", "127.0.0.1"),
        ("[::1]:8000", "::1"),
        ("[::1]", "::1"),
        ("API.Example.com:443", "api.example.com"),
        ("", ""),
        ("[::1", ""),
    ],
)
def test_the_name_of_a_host_header(header: str, name: str) -> None:
    assert host_name(header) == name


def test_hosts_are_loopback_only_unless_configured() -> None:
    default = Settings.model_fields["allowed_hosts"].default
    assert default == ["localhost", "127.0.0.1", "::1"]
    assert Settings(allowed_hosts="a.example, *.b.example").allowed_hosts == [
        "a.example",
        "*.b.example",
    ]
    loopback = Edge(_no_app, allowed_hosts=default)
    assert all(loopback.allows(name) for name in ("localhost", "127.0.0.1", "::1"))
    assert not any(loopback.allows(name) for name in ("evil.example", "", "127.0.0.2"))
    public = Edge(_no_app, allowed_hosts=["api.example.com", "*.internal.example"])
    assert public.allows("api.example.com")
    assert public.allows("ledger.internal.example")
    assert not public.allows("internal.example")
    assert not public.allows("localhost")
    assert Edge(_no_app, allowed_hosts=["*"]).allows("anything.example")


async def _no_app(*_args: Any) -> None:
    raise AssertionError("never called")


@pytest.mark.parametrize(
    ("prefer", "seconds"),
    [
        (None, 0.0),
        ("return=minimal", 0.0),
        ("wait=5", 5.0),
        ("respond-async, wait=10", 10.0),
        ('wait="2.5"', 2.5),
        ("WAIT=30", 30.0),
        ("wait=0", 0.0),
    ],
)
def test_prefer_wait_within_range(prefer: str | None, seconds: float) -> None:
    assert wait_seconds(None, prefer) == seconds


@pytest.mark.parametrize("value", ["1e9", "31", "30.5", "-1", "", "abc", "1" * 400])
def test_prefer_wait_outside_range_is_refused_not_shortened(value: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        wait_seconds(None, f"wait={value}")
    assert "0 to 30" in raised.value.detail
    assert len(raised.value.detail) < 200


def test_the_query_wait_comes_first() -> None:
    assert wait_seconds(3.0, "wait=7") == 3.0


def test_quoting_cuts_long_text() -> None:
    assert quoted("USD") == "'USD'"
    long = quoted("X" * 300_000)
    assert long.startswith("'XXXX") and long.endswith("(300000 characters)")
    assert len(long) < 80


def test_every_route_that_takes_a_body_parses_it_strictly() -> None:
    """A router whose routes take a JSON body is made with `route_class=JsonRoute`: a
    route left out would parse with `json.loads` (duplicate keys, UTF-16, no bound)."""
    bodies = []
    for module_info in pkgutil.iter_modules(api.routes.__path__):
        module = importlib.import_module(f"api.routes.{module_info.name}")
        for router in [v for v in vars(module).values() if isinstance(v, APIRouter)]:
            for route in router.routes:
                if isinstance(route, APIRoute) and route.body_field is not None:
                    bodies.append(route.path)
                    assert isinstance(route, JsonRoute), f"{route.path} is not a JsonRoute"
    assert "/api/v1/transactions" in bodies
    assert "/api/v1/transactions/batch" in bodies
    assert "/api/v1/accounts" in bodies
