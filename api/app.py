"""The FastAPI application factory: routes, problem handlers, intake and the outcome hub."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from api.auth import AUTH_OFF_WARNING, Authenticator
from api.backpressure import LagGate
from api.docs import install_docs
from api.edge import Edge
from api.intake import IntakeBatcher
from api.limits import BodySizeLimit
from api.metrics import TRANSIENT_RETRIES
from api.problems import MethodIndex, install_problem_handlers
from api.ratelimit import RateLimiter
from api.routes import accounts, audit, ops, postings, system, transactions
from api.waiting import OutcomeHub
from ledger_core.access import Keys
from ledger_core.errors import TransientFault
from runtime.context import Runtime

log = logging.getLogger(__name__)

DESCRIPTION = """
Queue-backed double-entry payment ledger. Postings are checked, recorded durably, and
applied in batches by partitioned workers. Amounts are decimal strings in major units;
errors are RFC 9457 problem+json with a stable `code`. Every endpoint but /health and
/ready needs an API key: `Authorization: Bearer <key>` (`ledgerflow keys create`).
"""


def count_retry(fault: TransientFault) -> None:
    TRANSIENT_RETRIES.labels(fault.sqlstate or "other").inc()


def create_app(runtime: Runtime) -> FastAPI:
    """The API over `runtime`, with its own ledger service whose retries it counts."""
    ledger = runtime.make_ledger(on_retry=count_retry)
    authenticator = Authenticator(
        Keys(runtime.database), runtime.settings, RateLimiter(runtime.async_redis_factory())
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gate = LagGate(ledger, runtime.settings)
        intake = IntakeBatcher(ledger, runtime.redis, runtime.settings, gate)
        hub = OutcomeHub(ledger, runtime.async_redis_factory())
        app.state.gate = gate
        app.state.intake = intake
        app.state.hub = hub
        if runtime.settings.auth == "off":
            log.warning(AUTH_OFF_WARNING)
        if runtime.settings.mode == "queued":
            gate.start()
        intake.start()
        hub.start()
        try:
            yield
        finally:
            await intake.stop()
            await hub.stop()
            await gate.stop()
            await authenticator.limiter.aclose()

    app = FastAPI(
        title="LedgerFlow",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        # A redirect would name the Host the client sent; a wrong path is a 404 instead.
        redirect_slashes=False,
    )
    app.state.runtime = runtime
    app.state.ledger = ledger
    app.state.auth = authenticator
    install_problem_handlers(app)
    app.add_middleware(
        BodySizeLimit,
        bytes_max=runtime.settings.body_bytes_max,
        read_timeout_s=runtime.settings.body_read_timeout_s,
    )
    # Added last, so it runs first: a foreign Host is refused before its body is read.
    app.add_middleware(Edge, allowed_hosts=runtime.settings.allowed_hosts)
    modules = (accounts, transactions, postings, ops, audit, system)
    for module in modules:
        app.include_router(module.router)
    app.include_router(ops.page_router)
    install_docs(app)
    routers = [module.router for module in modules] + [ops.page_router, app.router]
    app.state.methods = MethodIndex(route for router in routers for route in router.routes)
    return app
