"""Row mappers and the cursor codec shared by the store's modules.

Rows become the frozen domain values of `ledger_core.model` here and nowhere else, so
every module answers with the same shape whatever the dialect. Cursors are opaque to
clients: a position in a table's insertion order, refused when it was not produced here
(including positions a BIGINT cannot hold).
"""

from __future__ import annotations

import base64
import re
from typing import Any

from sqlalchemy import and_

from ledger_core.errors import InvalidCursor
from ledger_core.model import (
    CURSOR_PATTERN,
    Account,
    AccountFlag,
    AccountId,
    AccountStatus,
    AccountType,
    ClientId,
    PostingRecord,
    PostingStatus,
    RequestId,
    Transaction,
)
from ledger_core.store.tables import posting_requests

_CURSOR = re.compile(CURSOR_PATTERN)


def encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(f"p{position}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    """The position of a cursor `encode_cursor` made; anything else (padding, other
    characters, more than 18 digits, which a BIGINT might not hold) is refused."""
    if not cursor:
        return 0
    if not _CURSOR.fullmatch(cursor):
        raise InvalidCursor("cursor was not produced by this service")
    return int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))[1:])


def account_from_row(row: Any) -> Account:
    return Account(
        id=AccountId(row.id),
        name=row.name,
        account_type=AccountType(row.account_type),
        currency=row.currency,
        status=AccountStatus(row.status),
        flags=AccountFlag(row.flags),
        debits_posted=row.debits_posted,
        credits_posted=row.credits_posted,
        created_at=row.created_at,
        ledger=row.ledger,
    )


def record_from_row(row: Any, transaction: Transaction | None = None) -> PostingRecord:
    return PostingRecord(
        request_id=RequestId(row.id),
        client_id=ClientId(row.client_id),
        idempotency_key=row.idempotency_key,
        body_hash=row.body_hash,
        partition=row.partition,
        status=PostingStatus(row.status),
        accepted_at=row.accepted_at,
        error_code=row.error_code,
        error_detail=row.error_detail,
        transaction=transaction,
    )


def queued_in(partition: int) -> Any:
    """The requests still queued in `partition`: what the partial queued index holds."""
    return and_(
        posting_requests.c.partition == partition,
        posting_requests.c.status == PostingStatus.QUEUED.value,
    )


RECORD_COLUMNS = (
    posting_requests.c.id,
    posting_requests.c.client_id,
    posting_requests.c.idempotency_key,
    posting_requests.c.body_hash,
    posting_requests.c.partition,
    posting_requests.c.status,
    posting_requests.c.accepted_at,
    posting_requests.c.error_code,
    posting_requests.c.error_detail,
)
