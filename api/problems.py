"""RFC 9457 problem details: the one place errors become HTTP answers.

Every `LedgerError` becomes `application/problem+json` with its stable `code`; request
shapes FastAPI refuses become 422 (or 400 for unparseable JSON); anything unexpected is
logged and answered 500 without internals.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Route
from starlette.types import Send

from ledger_core.errors import (
    QUOTED_LENGTH_MAX,
    BodyTooLarge,
    Forbidden,
    InputError,
    InvalidAmount,
    InvalidEntries,
    InvalidIdempotencyKey,
    InvalidMetadata,
    InvalidRequest,
    InvalidText,
    LedgerError,
    MalformedJson,
    Overloaded,
    Unauthenticated,
)
from ledger_core.rules import ENTRIES_MAX, ENTRIES_MIN

log = logging.getLogger(__name__)
PROBLEM_MEDIA_TYPE = "application/problem+json"

# A field named here turns a shape error into that field's stable code.
_FIELD_CODES: dict[str, type[InputError]] = {
    "amount": InvalidAmount,
    "metadata": InvalidMetadata,
    "idempotency_key": InvalidIdempotencyKey,
}


class ProblemPublic(BaseModel):
    """RFC 9457 problem details with LedgerFlow's stable `code`."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: str


_PROBLEM_SCHEMA = ProblemPublic.model_json_schema()
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_SCHEMA}},
    }
    for status, description in (
        (400, "Malformed JSON (not UTF-8, a key twice, NaN, too deep), or a foreign Host"),
        (401, "No API key, or an unknown or revoked one"),
        (403, "The API key lacks the scope this endpoint needs"),
        (404, "Not found"),
        (409, "Idempotency key reused with a different body"),
        (408, "The body did not arrive whole in time; the connection is closed"),
        (413, "Body too large"),
        (422, "Invalid request, or a posting refused on ledger state"),
        (429, "A partition the posting routes to is lagging; retry after Retry-After seconds"),
        (503, "Overloaded or a dependency is unavailable; retry with the same key"),
    )
}

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: BodyTooLarge.code}
_MESSAGE_LENGTH_MAX = 200


def problem_body(
    *, code: str, title: str, status: int, detail: str, **extra: Any
) -> dict[str, Any]:
    return {
        "type": f"urn:ledgerflow:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }


def error_body(error: LedgerError, **extra: Any) -> dict[str, Any]:
    return problem_body(
        code=error.code, title=error.title, status=error.http_status, detail=error.detail, **extra
    )


async def send_problem(
    send: Send, error: LedgerError, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """Answer `error` as problem+json from pure ASGI code, before any route runs."""
    payload = json.dumps(error_body(error)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": error.http_status,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        body, status_code=int(body["status"]), media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


def shape_error(errors: Sequence[Any]) -> InputError:
    """The input error for a list of pydantic errors: JSON, a known field, or the shape."""
    if any(error.get("type") == "json_invalid" for error in errors):
        return MalformedJson("the body is not valid JSON")
    first = errors[0] if errors else {}
    location = [_clipped(part) for part in first.get("loc", ()) if part != "body"]
    field = next((part for part in reversed(location) if part in _FIELD_CODES), None)
    if first.get("type") == "extra_forbidden":
        field = None
    if location == ["entries"] and first.get("type") in ("too_short", "too_long"):
        count = first.get("ctx", {}).get("actual_length")
        return InvalidEntries(
            f"a transaction has {ENTRIES_MIN} to {ENTRIES_MAX} entries, not {count}"
        )
    where = ".".join(location) or "body"
    detail = f"{where}: {_clipped(first.get('msg', 'invalid'), _MESSAGE_LENGTH_MAX)}"
    if first.get("type") == "string_unicode":
        return InvalidText(f"{where}: not valid Unicode text")
    if field == "amount" and first.get("type") == "string_type":
        detail = f'{where}: amounts are decimal strings such as "125.00", not JSON numbers'
    return (_FIELD_CODES[field] if field else InvalidRequest)(detail)


def _clipped(part: Any, length_max: int = QUOTED_LENGTH_MAX) -> str:
    """A location or message as a problem shows it: a field name the client made up (an
    unknown key of 300,000 characters, say) is cut, not echoed back whole."""
    text = str(part)
    return text if len(text) <= length_max else f"{text[:length_max]}..."


def _errors_list(errors: Sequence[Any]) -> list[dict[str, Any]]:
    return [
        {
            "loc": [_clipped(p) for p in e.get("loc", ())],
            "msg": _clipped(e.get("msg", ""), _MESSAGE_LENGTH_MAX),
            "type": e.get("type"),
        }
        for e in errors[:20]
    ]


# Pages a browser opens also offer Basic, so that it asks for the key (as the user name).
_BROWSER_PATHS = ("/ops", "/docs")


def _challenged(request: Request, response: JSONResponse) -> JSONResponse:
    """One WWW-Authenticate header per scheme: browsers read Basic only from its own."""
    response.headers["WWW-Authenticate"] = 'Bearer realm="LedgerFlow"'
    if request.url.path in _BROWSER_PATHS:
        response.headers.append("WWW-Authenticate", 'Basic realm="LedgerFlow", charset="UTF-8"')
    return response


class MethodIndex:
    """The methods of every route, by path: what a 405 answer's `Allow` header lists."""

    def __init__(self, routes: Iterable[BaseRoute]) -> None:
        self._routes = [
            (route.path_regex, route.methods or set())
            for route in routes
            if isinstance(route, Route | APIRoute)
        ]

    def allowed(self, path: str) -> str:
        methods = {m for regex, found in self._routes if regex.match(path) for m in found}
        return ", ".join(sorted(methods))


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(LedgerError)
    async def ledger_error(request: Request, error: LedgerError) -> JSONResponse:
        if isinstance(error, Unauthenticated):
            return _challenged(request, problem_response(error_body(error)))
        if isinstance(error, Forbidden):
            return problem_response(error_body(error, scope=error.scope))
        if isinstance(error, Overloaded):
            return problem_response(
                error_body(error, retry_after_s=error.retry_after_s, **error.facts),
                headers={"Retry-After": str(error.retry_after_s)},
            )
        return problem_response(error_body(error))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
        errors = error.errors()
        return problem_response(error_body(shape_error(errors), errors=_errors_list(errors)))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(error.status_code, "http_error")
        body = problem_body(
            code=code, title=str(error.detail), status=error.status_code, detail=str(error.detail)
        )
        headers = getattr(error, "headers", None)
        if error.status_code == 405:
            # The router names the methods of the first route whose path matched; RFC 9110
            # asks for every method the resource supports.
            headers = {"Allow": request.app.state.methods.allowed(request.url.path)}
        return problem_response(body, headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=error)
        body = problem_body(
            code="internal_error",
            title="Internal error",
            status=500,
            detail="the service failed unexpectedly; the request may be retried with the same key",
        )
        # Starlette answers this from outside every middleware, `api/edge.py` included.
        return problem_response(body, headers={"X-Content-Type-Options": "nosniff"})
