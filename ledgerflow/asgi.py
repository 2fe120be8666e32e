"""Entry point for uvicorn: `ledgerflow.asgi:create` builds the app from the environment.

A composition root like the CLI: each API process (`serve --workers N`) calls it once."""

from __future__ import annotations

from fastapi import FastAPI

from api.app import create_app
from ledger_core.settings import Settings
from runtime.context import build_runtime, tune_gc


def create() -> FastAPI:
    app = create_app(build_runtime(Settings()))
    tune_gc()
    return app
