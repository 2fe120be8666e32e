"""The ledger's nouns as frozen dataclasses. No behaviour beyond derived values.

Amounts are integers of minor units everywhere in this module; `money.py` converts them.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, NewType, TypeVar

AccountId = NewType("AccountId", uuid.UUID)
TransactionId = NewType("TransactionId", uuid.UUID)
RequestId = NewType("RequestId", int)
ClientId = NewType("ClientId", str)


class AccountType(enum.StrEnum):
    ASSET = "asset"
    LIABILITY = "liability"
    EQUITY = "equity"
    REVENUE = "revenue"
    EXPENSE = "expense"

    @property
    def debit_normal(self) -> bool:
        """Asset and expense accounts grow with debits; the others grow with credits."""
        return self in (AccountType.ASSET, AccountType.EXPENSE)


class AccountStatus(enum.StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"


class AccountFlag(enum.IntFlag):
    NONE = 0
    DEBITS_MUST_NOT_EXCEED_CREDITS = 1
    CREDITS_MUST_NOT_EXCEED_DEBITS = 2


FLAG_NAMES: dict[str, AccountFlag] = {
    "debits_must_not_exceed_credits": AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS,
    "credits_must_not_exceed_debits": AccountFlag.CREDITS_MUST_NOT_EXCEED_DEBITS,
}


def flag_names(flags: AccountFlag) -> list[str]:
    return [name for name, flag in FLAG_NAMES.items() if flag in flags]


class Direction(enum.StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"


class PostingStatus(enum.StrEnum):
    QUEUED = "queued"
    POSTED = "posted"
    REJECTED = "rejected"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Balance:
    """An account's posted totals as the engine sees them while its row is locked, and the
    ledger (tenant) it belongs to."""

    account_id: AccountId
    currency: str
    status: AccountStatus
    flags: AccountFlag
    debits_posted: int
    credits_posted: int
    ledger: str


@dataclass(frozen=True)
class Account:
    """An account of one ledger (tenant): only that ledger's keys see it or post to it."""

    id: AccountId
    name: str
    account_type: AccountType
    currency: str
    status: AccountStatus
    flags: AccountFlag
    debits_posted: int
    credits_posted: int
    created_at: datetime
    ledger: str

    @property
    def balance(self) -> int:
        """The balance on the account's normal side."""
        if self.account_type.debit_normal:
            return self.debits_posted - self.credits_posted
        return self.credits_posted - self.debits_posted


@dataclass(frozen=True, slots=True)
class Entry:
    account_id: AccountId
    direction: Direction
    amount_minor: int


@dataclass(frozen=True, slots=True)
class Posting:
    """A validated request to post one balanced transaction."""

    idempotency_key: str
    currency: str
    entries: tuple[Entry, ...]
    reference: str | None = None
    description: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def routing_account_id(self) -> AccountId:
        """The account whose partition applies this posting: the first debited account."""
        return next(e.account_id for e in self.entries if e.direction is Direction.DEBIT)


@dataclass(frozen=True, slots=True)
class Sender:
    """Who sends a posting: the client (its idempotency scope, from the API key) and the
    ledger (tenant) whose accounts the posting may name."""

    client_id: ClientId
    ledger: str


@dataclass(frozen=True, slots=True)
class QueuedPosting:
    """A posting as the worker reads it back from the intake table, with the ledger it was
    sent in: the engine treats an account of another ledger as one that does not exist."""

    request_id: RequestId
    client_id: ClientId
    posting: Posting
    partition: int = 0
    ledger: str = field(kw_only=True)


@dataclass(frozen=True, slots=True)
class Outcome:
    """The engine's verdict on one posting: posted, or refused with a stable code."""

    request_id: RequestId
    posted: bool
    code: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class Posted:
    """What a batch's writes produced: each posted request's transaction id, and the
    posting time they share (the batch transaction's)."""

    transaction_ids: dict[RequestId, str] = field(default_factory=dict)
    posted_at: datetime | None = None


@dataclass(frozen=True)
class Transaction:
    id: TransactionId
    request_id: RequestId
    idempotency_key: str
    currency: str
    entries: tuple[Entry, ...]
    reference: str | None
    description: str | None
    metadata: dict[str, str]
    posted_at: datetime


@dataclass(frozen=True)
class PostingRecord:
    """What the ledger knows of one accepted request: its status and, when final, its result."""

    request_id: RequestId
    client_id: ClientId
    idempotency_key: str
    body_hash: str
    partition: int
    status: PostingStatus
    accepted_at: datetime
    error_code: str | None = None
    error_detail: str | None = None
    transaction: Transaction | None = None


T = TypeVar("T")


# Every cursor the store hands out, and all it takes back (with "", the first page): the
# unpadded base64url of "p" and a position of 1 to 18 digits. Spelled out character by
# character so that the OpenAPI document can state it and a client (or a fuzzer) can tell a
# cursor from anything else without asking the service.
_C3, _C4 = "[AEIMQUYcgk]", "[w-z0-5]"
_DIGIT_PAIR, _DIGIT_LAST = "(?:[MN][DTjz]|O[DT])", "(?:[MN][AQgw]|O[AQ])"
_DIGITS3 = f"{_DIGIT_PAIR}{_C3}{_C4}"
CURSOR_PATTERN = (
    f"^(?:cD{_C3}(?:{_C4}(?:(?:{_DIGITS3}){{0,4}}(?:{_DIGIT_LAST}|{_DIGIT_PAIR}{_C3})?"
    f"|(?:{_DIGITS3}){{5}}{_DIGIT_LAST}?))?)?$"
)


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True)
class Fence:
    """What a batch must still hold at commit: the partition's lease under this token."""

    partition: int
    owner: str
    token: int


@dataclass(frozen=True)
class FailedPosting:
    """A request that could not be applied, for operators to read and replay."""

    request_id: RequestId
    client_id: ClientId
    idempotency_key: str
    partition: int
    error_code: str | None
    error_detail: str | None
    accepted_at: datetime
    finished_at: datetime | None
