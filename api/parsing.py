"""Request bodies: parsed once, strictly, and bounded while they are parsed.

Every router whose routes take a JSON body uses `JsonRoute`. It parses the body here before
FastAPI sees it; FastAPI then validates the parsed value into the route's model without
parsing the body again. What `json.loads` would let through is refused as 400
`malformed_json`: a body that is not UTF-8 (`json.loads` of bytes takes UTF-16 and UTF-32
too), a key given twice in one object (it would keep the last one silently), NaN and
Infinity (not JSON), an integer too long to convert, and nesting deeper than the parser's
recursion limit (about 1,000 levels).

A body model listed in `OBJECTS_MAX` is bounded while it is parsed: the parser stops at the
first JSON object past the most a valid body holds, so a posting of 40,000 entries is
refused after 66 objects instead of after building 40,000 and validating them.

One decoder serves every request. Its object counter is per thread (each server thread runs
its own event loop, and a parse never awaits), which keeps the hook's cost under a
microsecond for a typical posting.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from api.schemas import BATCH_SIZE_MAX, BatchCreate, TransactionCreate
from ledger_core.errors import InputError, InvalidEntries, InvalidRequest, MalformedJson, quoted
from ledger_core.rules import ENTRIES_MAX, ENTRIES_MIN

Refusal = Callable[[int], InputError]
# A posting body holds itself, its metadata and its entries; a batch, itself and postings.
POSTING_OBJECTS_MAX = 2 + ENTRIES_MAX


def _too_many_entries(objects_max: int) -> InputError:
    return InvalidEntries(
        f"a transaction has {ENTRIES_MIN} to {ENTRIES_MAX} entries; this body holds more than "
        f"{objects_max} JSON objects"
    )


def _too_many_postings(objects_max: int) -> InputError:
    return InvalidRequest(
        f"a batch holds at most {BATCH_SIZE_MAX} transactions of at most {ENTRIES_MAX} "
        f"entries; this body holds more than {objects_max} JSON objects"
    )


# The most JSON objects a valid body of a model holds, and the refusal past it.
OBJECTS_MAX: dict[type, tuple[int, Refusal]] = {
    TransactionCreate: (POSTING_OBJECTS_MAX, _too_many_entries),
    BatchCreate: (1 + BATCH_SIZE_MAX * POSTING_OBJECTS_MAX, _too_many_postings),
}


class _TooManyObjects(Exception):
    """Raised by the object hook past the bound; `parse_json` raises the refusal instead."""


class _Counter(threading.local):
    objects_left: int | None = None


_counter = _Counter()


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    left = _counter.objects_left
    if left is not None:
        if left <= 0:
            raise _TooManyObjects
        _counter.objects_left = left - 1
    built = dict(pairs)
    if len(built) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise MalformedJson(f"the key {quoted(key)} appears twice in one object")
            seen.add(key)
    return built


def _not_json(constant: str) -> Any:
    raise MalformedJson(f"{constant} is not a JSON value")


_DECODER = json.JSONDecoder(object_pairs_hook=_object, parse_constant=_not_json)


def parse_json(body: bytes, bound: tuple[int, Refusal] | None = None) -> Any:
    """The JSON value of `body`, strictly: UTF-8, no key twice in an object, no NaN. With a
    `bound` (objects_max, refusal), `refusal(objects_max)` is raised at the first object
    past it."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedJson("the body is not UTF-8 text") from None
    _counter.objects_left = None if bound is None else bound[0]
    try:
        return _DECODER.decode(text)
    except _TooManyObjects:
        if bound is None:  # the hook stops only under a bound
            raise
        raise bound[1](bound[0]) from None
    except json.JSONDecodeError as error:
        raise MalformedJson(f"the body is not valid JSON: {error.msg} at {error.pos}") from None
    except RecursionError:
        raise MalformedJson("the body nests arrays or objects too deeply") from None
    except ValueError:
        # Only an integer longer than Python converts (4,300 digits) gets here.
        raise MalformedJson("the body holds a number too long to read") from None
    finally:
        _counter.objects_left = None


def declares_json(content_type: str | None) -> bool:
    """Whether FastAPI parses a body of this type as JSON: application/json or */*+json."""
    if content_type is None:
        return False
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


_UNPARSED = object()


class ParsedRequest(Request):
    """A request whose `json()` is `parse_json` of its body, under its route's bound."""

    bound: tuple[int, Refusal] | None = None
    _parsed: Any = _UNPARSED

    async def json(self) -> Any:
        if self._parsed is _UNPARSED:
            self._parsed = parse_json(await self.body(), self.bound)
        return self._parsed


class JsonRoute(APIRoute):
    """A route whose JSON body is parsed by `parse_json`, bounded as `OBJECTS_MAX` says."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler
        bound = OBJECTS_MAX.get(self.body_field.field_info.annotation)  # type: ignore[arg-type]

        async def parse_then_handle(request: Request) -> Response:
            parsed = ParsedRequest(request.scope, request.receive)
            parsed.bound = bound
            # Parsed before FastAPI reads the body: a refusal raised inside FastAPI's own
            # reading would reach the problem handlers as a generic 400.
            if declares_json(request.headers.get("content-type")) and await parsed.body():
                await parsed.json()
            return await handler(parsed)

        return parse_then_handle
