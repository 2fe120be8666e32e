"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from api.auth import AUTH_OFF_WARNING, Ops
from api.dependencies import LedgerDep, RuntimeDep
from api.metrics import exposition

router = APIRouter(tags=["system"])


@router.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready")
def ready(runtime: RuntimeDep) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        runtime.database.ping()
        checks["database"] = "ok"
    except Exception as error:  # noqa: BLE001 - readiness reports, it does not raise
        checks["database"] = f"unreachable: {type(error).__name__}"
    try:
        runtime.redis.ping()
        checks["redis"] = "ok"
    except Exception as error:  # noqa: BLE001
        checks["redis"] = f"unreachable: {type(error).__name__}"
    ok = all(value == "ok" for value in checks.values())
    body: dict[str, object] = {"status": "ready" if ok else "unavailable", "checks": checks}
    if runtime.settings.auth == "off":
        body["warnings"] = [AUTH_OFF_WARNING]
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
def metrics(_caller: Ops, runtime: RuntimeDep, ledger: LedgerDep) -> Response:
    return Response(exposition(runtime, ledger), media_type=CONTENT_TYPE_LATEST)
