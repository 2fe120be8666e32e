"""Request-scoped access to the process's services, and the client identity.

Every dependency is `async def`: FastAPI runs a plain `def` dependency in the thread pool,
which for these one-line lookups cost more than the whole request's own work.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Header, Request

from api.intake import IntakeBatcher
from api.waiting import OutcomeHub
from ledger_core.errors import InvalidRequest
from ledger_core.model import ClientId
from ledger_core.services import Ledger
from runtime.context import Runtime

CLIENT_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")
DEFAULT_CLIENT = ClientId("default")


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


async def get_client_id(
    x_client_id: Annotated[
        str | None,
        Header(description="Client identity; idempotency keys are unique per client"),
    ] = None,
) -> ClientId:
    if x_client_id is None:
        return DEFAULT_CLIENT
    if not CLIENT_ID_PATTERN.fullmatch(x_client_id):
        raise InvalidRequest("X-Client-Id must be 1-128 letters, digits or . _ : -")
    return ClientId(x_client_id)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
LedgerDep = Annotated[Ledger, Depends(get_ledger)]
IntakeDep = Annotated[IntakeBatcher, Depends(get_intake)]
HubDep = Annotated[OutcomeHub, Depends(get_hub)]
ClientDep = Annotated[ClientId, Depends(get_client_id)]
