"""The HTTP ceiling: what FastAPI and uvicorn alone cost for a posting, storing nothing.

`POST /api/v1/transactions` validates the body with the service's own pydantic schema
(`api.schemas.TransactionCreate`) and answers 202 with a body of the service's shape;
`POST /api/v1/transactions/batch` validates each item the way the service's batch route
does. No database, no queue. It is served exactly as `ledgerflow serve` serves the
service: one uvicorn process, an app factory, the same options and the same garbage
collector settings (`runtime.context.tune_gc`), so the benchmark's single mode divided by
this app's rate is the share of the HTTP ceiling the service reaches.

`python -m benchmarks.ceiling_app --port N` serves it on 127.0.0.1; the benchmark starts
and ends it itself unless given `--http-ceiling-url`.
"""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from api.schemas import BatchCreate, TransactionCreate
from benchmarks.e2e import API_PREFIX
from runtime.context import tune_gc


def queued(key: str) -> dict[str, str]:
    """The service's answer to an accepted posting, as `PostingPublic` dumps it."""
    return {
        "idempotency_key": key,
        "status": "queued",
        "status_url": f"{API_PREFIX}/postings/{key}",
    }


def create_app() -> FastAPI:
    app = FastAPI(title="LedgerFlow HTTP ceiling")

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post(f"{API_PREFIX}/transactions", status_code=202)
    async def submit_transaction(body: TransactionCreate) -> JSONResponse:
        return JSONResponse(queued(body.idempotency_key), status_code=202)

    @app.post(f"{API_PREFIX}/transactions/batch")
    async def submit_batch(body: BatchCreate) -> JSONResponse:
        results: list[dict[str, Any]] = []
        for index, raw in enumerate(body.transactions):
            try:
                results.append(queued(TransactionCreate.model_validate(raw).idempotency_key))
            except ValidationError:
                results.append({"status": 422, "code": "invalid", "index": index})
        return JSONResponse({"results": results})

    return app


def create() -> FastAPI:
    """uvicorn's factory, as `ledgerflow.asgi.create` is the service's."""
    app = create_app()
    tune_gc()
    return app


def main(argv: list[str] | None = None) -> None:
    arguments = argparse.ArgumentParser(prog="python -m benchmarks.ceiling_app")
    arguments.add_argument("--port", type=int, required=True)
    args = arguments.parse_args(argv)
    # The options of `ledgerflow serve` (ledgerflow/cli.py), host fixed to loopback.
    uvicorn.run(
        "benchmarks.ceiling_app:create",
        factory=True,
        host="127.0.0.1",
        port=args.port,
        workers=1,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
