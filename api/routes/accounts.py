"""Accounts: open, list, read, activate or deactivate, and balances."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.auth import AccountsWrite, LedgerRead
from api.dependencies import LedgerDep
from api.presenters import API_PREFIX, account_public, balance_public
from api.problems import PROBLEM_RESPONSES
from api.schemas import AccountCreate, AccountPage, AccountPatch, AccountPublic, BalancePublic
from ledger_core.model import FLAG_NAMES, AccountFlag, AccountId

router = APIRouter(prefix=f"{API_PREFIX}/accounts", tags=["accounts"], responses=PROBLEM_RESPONSES)


@router.post("", status_code=201, response_model=AccountPublic)
def open_account(
    body: AccountCreate, _caller: AccountsWrite, ledger: LedgerDep, response: Response
) -> AccountPublic:
    flags = AccountFlag.NONE
    for name in body.flags:
        flags |= FLAG_NAMES[name]
    account = ledger.open_account(
        name=body.name, account_type=body.account_type, currency=body.currency, flags=flags
    )
    response.headers["Location"] = f"{API_PREFIX}/accounts/{account.id}"
    return account_public(account)


@router.get("", response_model=AccountPage)
def list_accounts(
    _caller: LedgerRead,
    ledger: LedgerDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AccountPage:
    page = ledger.list_accounts(cursor, limit)
    return AccountPage(items=[account_public(a) for a in page.items], next_cursor=page.next_cursor)


@router.get("/{account_id}", response_model=AccountPublic)
def get_account(account_id: uuid.UUID, _caller: LedgerRead, ledger: LedgerDep) -> AccountPublic:
    return account_public(ledger.get_account(AccountId(account_id)))


@router.patch("/{account_id}", response_model=AccountPublic)
def patch_account(
    account_id: uuid.UUID, body: AccountPatch, _caller: AccountsWrite, ledger: LedgerDep
) -> AccountPublic:
    return account_public(ledger.set_account_status(AccountId(account_id), body.status))


@router.get("/{account_id}/balance", response_model=BalancePublic)
def get_balance(account_id: uuid.UUID, _caller: LedgerRead, ledger: LedgerDep) -> BalancePublic:
    return balance_public(ledger.get_account(AccountId(account_id)))
