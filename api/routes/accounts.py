"""Accounts: open, list, read, activate or deactivate, and balances, in the key's ledger.

Another ledger's account is 404 here, exactly as one that does not exist."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.auth import AccountsWrite, LedgerRead
from api.dependencies import LedgerDep
from api.parsing import JsonRoute
from api.presenters import API_PREFIX, account_public, balance_public
from api.problems import PROBLEM_RESPONSES
from api.schemas import (
    AccountCreate,
    AccountPage,
    AccountPatch,
    AccountPublic,
    BalancePublic,
    CursorQuery,
)
from ledger_core.model import FLAG_NAMES, AccountFlag, AccountId

router = APIRouter(
    prefix=f"{API_PREFIX}/accounts",
    tags=["accounts"],
    responses=PROBLEM_RESPONSES,
    route_class=JsonRoute,
)


@router.post("", status_code=201, response_model=AccountPublic)
def open_account(
    body: AccountCreate, caller: AccountsWrite, ledger: LedgerDep, response: Response
) -> AccountPublic:
    flags = AccountFlag.NONE
    for name in body.flags:
        flags |= FLAG_NAMES[name]
    account = ledger.open_account(
        name=body.name,
        account_type=body.account_type,
        currency=body.currency,
        flags=flags,
        ledger=caller.ledger,
        actor=caller.actor,
    )
    response.headers["Location"] = f"{API_PREFIX}/accounts/{account.id}"
    return account_public(account)


@router.get("", response_model=AccountPage)
def list_accounts(
    caller: LedgerRead,
    ledger: LedgerDep,
    cursor: CursorQuery = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AccountPage:
    page = ledger.list_accounts(cursor, limit, ledger=caller.ledger)
    return AccountPage(items=[account_public(a) for a in page.items], next_cursor=page.next_cursor)


@router.get("/{account_id}", response_model=AccountPublic)
def get_account(account_id: uuid.UUID, caller: LedgerRead, ledger: LedgerDep) -> AccountPublic:
    return account_public(ledger.get_account(AccountId(account_id), ledger=caller.ledger))


@router.patch("/{account_id}", response_model=AccountPublic)
def patch_account(
    account_id: uuid.UUID, body: AccountPatch, caller: AccountsWrite, ledger: LedgerDep
) -> AccountPublic:
    changed = ledger.set_account_status(
        AccountId(account_id), body.status, ledger=caller.ledger, actor=caller.actor
    )
    return account_public(changed)


@router.get("/{account_id}/balance", response_model=BalancePublic)
def get_balance(account_id: uuid.UUID, caller: LedgerRead, ledger: LedgerDep) -> BalancePublic:
    return balance_public(ledger.get_account(AccountId(account_id), ledger=caller.ledger))
