"""Request-scoped access to the process's services (the caller's identity: `api.auth`).

Every dependency is `async def`: FastAPI runs a plain `def` dependency in the thread pool,
which for these one-line lookups cost more than the whole request's own work.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.intake import IntakeBatcher
from api.waiting import OutcomeHub
from ledger_core.services import Ledger
from runtime.context import Runtime


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_ledger(request: Request) -> Ledger:
    ledger: Ledger = request.app.state.ledger
    return ledger


async def get_intake(request: Request) -> IntakeBatcher:
    intake: IntakeBatcher = request.app.state.intake
    return intake


async def get_hub(request: Request) -> OutcomeHub:
    hub: OutcomeHub = request.app.state.hub
    return hub


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
LedgerDep = Annotated[Ledger, Depends(get_ledger)]
IntakeDep = Annotated[IntakeBatcher, Depends(get_intake)]
HubDep = Annotated[OutcomeHub, Depends(get_hub)]
