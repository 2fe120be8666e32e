"""Entry point for uvicorn: `api.main:create` builds the app from the environment."""

from __future__ import annotations

from fastapi import FastAPI

from api.app import create_app
from worker.runtime import get_runtime, tune_gc


def create() -> FastAPI:
    app = create_app(get_runtime())
    tune_gc()
    return app
