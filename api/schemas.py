"""Request and response bodies. Amounts travel as decimal strings; JSON numbers are refused.

The OpenAPI document states every constraint a body is held to. Those that pydantic checks
here (lengths, the number of entries) keep each refusal's stable code (`api/problems.py`
maps them); the others are stated in `json_schema_extra` only, because `ledger_core.rules`
refuses them with a more precise code than a shape error would have.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field, StrictStr
from pydantic.config import JsonDict

from ledger_core.model import CURSOR_PATTERN, AccountStatus, AccountType, Direction
from ledger_core.rules import (
    ENTRIES_MAX,
    ENTRIES_MIN,
    IDEMPOTENCY_KEY_PATTERN,
    METADATA_KEY_LENGTH_MAX,
    METADATA_KEYS_MAX,
    METADATA_VALUE_LENGTH_MAX,
)

FlagName = Literal["debits_must_not_exceed_credits", "credits_must_not_exceed_debits"]
BATCH_SIZE_MAX = 1000
# Text is stored as UTF-8 in PostgreSQL, which holds no NUL character (`rules.check_text`).
TEXT: JsonDict = {"pattern": "^[^\\u0000]*$"}
CURRENCY: JsonDict = {"pattern": "^[A-Z]{3}$"}
CURRENCY_DESCRIPTION = "An ISO 4217 code that has a minor unit, upper case"
IDEMPOTENCY_KEY: JsonDict = {
    "pattern": f"^{IDEMPOTENCY_KEY_PATTERN.pattern}$",
    "minLength": 1,
    "maxLength": 128,
}
AMOUNT: JsonDict = {"pattern": "^(0|[1-9][0-9]*)(\\.[0-9]+)?$"}
METADATA: JsonDict = {
    "maxProperties": METADATA_KEYS_MAX,
    "propertyNames": {"minLength": 1, "maxLength": METADATA_KEY_LENGTH_MAX, **TEXT},
    "additionalProperties": {"type": "string", "maxLength": METADATA_VALUE_LENGTH_MAX, **TEXT},
}

# The query parameter of every list: a cursor is refused (422 invalid_cursor) unless this
# service made it, so the document states its exact form.
CursorQuery = Annotated[
    str | None,
    Query(
        description="The `next_cursor` of the page before; none (or empty) for the first page",
        json_schema_extra={"pattern": CURSOR_PATTERN},
    ),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AccountCreate(Strict):
    name: Annotated[StrictStr, Field(min_length=1, max_length=200, json_schema_extra=TEXT)]
    account_type: AccountType
    currency: StrictStr = Field(description=CURRENCY_DESCRIPTION, json_schema_extra=CURRENCY)
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
    amount: StrictStr = Field(
        description='Decimal string in major units, e.g. "125.00": greater than zero, with no '
        "more decimals than the currency has, and at most the deployment's largest amount of "
        "one entry (10,000,000,000,000.00 USD unless configured)",
        json_schema_extra=AMOUNT,
    )


class TransactionCreate(Strict):
    idempotency_key: StrictStr = Field(
        description="Client-chosen key: 1-128 letters, digits or . _ : ~ -; same key and "
        "body replays the original outcome",
        json_schema_extra=IDEMPOTENCY_KEY,
    )
    reference: Annotated[StrictStr, Field(max_length=128, json_schema_extra=TEXT)] | None = None
    description: Annotated[StrictStr, Field(max_length=1024, json_schema_extra=TEXT)] | None = None
    currency: StrictStr = Field(description=CURRENCY_DESCRIPTION, json_schema_extra=CURRENCY)
    entries: list[EntryCreate] = Field(
        min_length=ENTRIES_MIN,
        max_length=ENTRIES_MAX,
        description="Debits and credits of one currency, summing to the same amount; an "
        "account is not both debited and credited",
    )
    metadata: (
        Annotated[
            dict[str, Any],
            Field(description="Up to 16 short strings", json_schema_extra=METADATA),
        ]
        | None
    ) = None

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
    transactions: list[dict[str, Any]] = Field(
        max_length=BATCH_SIZE_MAX,
        description="Bodies of POST /api/v1/transactions (TransactionCreate); an item that "
        "is not one gets its own problem in the results, in its place",
    )


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


class AuditEventPublic(BaseModel):
    position: int
    key_id: str | None
    client: str
    ledger: str
    action: str
    target: str
    details: dict[str, Any]
    at: datetime


class AuditEventPage(BaseModel):
    items: list[AuditEventPublic]
    next_cursor: str | None


class RetryRequest(Strict):
    """Failed postings to queue again: by idempotency key (of `client`, or of any client
    when it is left out), or every one with `all`."""

    # Checked here, not by the store: a NUL (which PostgreSQL text cannot hold) was a 500.
    idempotency_keys: list[
        Annotated[StrictStr, Field(pattern=f"^{IDEMPOTENCY_KEY_PATTERN.pattern}$")]
    ] = Field(default_factory=list, max_length=1000)
    client: Annotated[StrictStr, Field(max_length=128, pattern=TEXT["pattern"])] | None = None
    all: bool = False


class RetryResult(BaseModel):
    requeued: int
    partitions: dict[str, list[int]]
