"""The OpenAPI document and Swagger UI, behind a key like every other endpoint.

The document declares the two ways to present a key (Bearer, and Basic with the key as
the user name) and that every operation but /health and /ready needs one.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse

from api.auth import AnyKey

OPEN_PATHS = ("/health", "/ready")
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "An API key"},
    "basic": {
        "type": "http",
        "scheme": "basic",
        "description": "An API key as the user name, no password (for browsers)",
    },
}


def openapi_document(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        document.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
        document["security"] = [{"bearer": []}, {"basic": []}]
        for path in OPEN_PATHS:
            for operation in document["paths"].get(path, {}).values():
                operation["security"] = []
        app.openapi_schema = document
    return app.openapi_schema


def install_docs(app: FastAPI) -> None:
    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(_caller: AnyKey) -> JSONResponse:
        return JSONResponse(openapi_document(app))

    @app.get("/docs", include_in_schema=False)
    async def docs(_caller: AnyKey) -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} API")

    app.openapi = lambda: openapi_document(app)  # type: ignore[method-assign]
