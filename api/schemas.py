"""Request and response bodies. Amounts travel as decimal strings; JSON numbers are refused."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from ledger_core.model import AccountStatus, AccountType, Direction

FlagName = Literal["debits_must_not_exceed_credits", "credits_must_not_exceed_debits"]
BATCH_SIZE_MAX = 1000


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AccountCreate(Strict):
    name: Annotated[StrictStr, Field(min_length=1, max_length=200)]
    account_type: AccountType
    currency: StrictStr
    flags: list[FlagName] = Field(default_factory=list, max_length=2)

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"name": "User Wallet", "account_type": "asset", "currency": "USD"},
                {
                    "name": "Customer balance",
                    "account_type": "liability",
                    "currency": "USD",
                    "flags": ["debits_must_not_exceed_credits"],
                },
            ]
        },
    )


class AccountPatch(Strict):
    status: AccountStatus


class AccountPublic(BaseModel):
    id: uuid.UUID
    name: str
    account_type: AccountType
    currency: str
    status: AccountStatus
    flags: list[str]
    created_at: datetime


class AccountPage(BaseModel):
    items: list[AccountPublic]
    next_cursor: str | None


class BalancePublic(BaseModel):
    account_id: uuid.UUID
    currency: str
    debits_posted: str
    credits_posted: str
    balance: str


class EntryCreate(Strict):
    account_id: uuid.UUID
    direction: Direction
    amount: StrictStr = Field(description='Decimal string in major units, e.g. "125.00"')


class TransactionCreate(Strict):
    idempotency_key: StrictStr = Field(
        description="Client-chosen key: 1-128 letters, digits or . _ : ~ -; same key and "
        "body replays the original outcome"
    )
    reference: Annotated[StrictStr, Field(max_length=128)] | None = None
    description: Annotated[StrictStr, Field(max_length=1024)] | None = None
    currency: StrictStr
    entries: list[EntryCreate]
    metadata: dict[str, Any] | None = None

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "idempotency_key": "IK-PAY-1001",
                    "reference": "PAY-1001",
                    "description": "Wallet payment capture",
                    "currency": "USD",
                    "entries": [
                        {
                            "account_id": "3f1c2a9e-0000-4000-8000-000000000001",
                            "direction": "debit",
                            "amount": "125.00",
                        },
                        {
                            "account_id": "3f1c2a9e-0000-4000-8000-000000000002",
                            "direction": "credit",
                            "amount": "125.00",
                        },
                    ],
                }
            ]
        },
    )


class BatchCreate(Strict):
    transactions: list[dict[str, Any]] = Field(max_length=BATCH_SIZE_MAX)


class EntryPublic(BaseModel):
    account_id: uuid.UUID
    direction: Direction
    amount: str


class TransactionPublic(BaseModel):
    id: uuid.UUID
    idempotency_key: str
    reference: str | None
    description: str | None
    currency: str
    entries: list[EntryPublic]
    metadata: dict[str, str]
    posted_at: datetime


class TransactionPage(BaseModel):
    items: list[TransactionPublic]
    next_cursor: str | None


class ErrorPublic(BaseModel):
    code: str
    detail: str | None


class PostingPublic(BaseModel):
    idempotency_key: str
    status: Literal["queued", "posted", "rejected", "failed"]
    status_url: str
    transaction: TransactionPublic | None = None
    error: ErrorPublic | None = None


class BatchResults(BaseModel):
    results: list[dict[str, Any]]
