"""Domain objects to response schemas: amounts become decimal strings here."""

from __future__ import annotations

from api.schemas import (
    AccountPublic,
    BalancePublic,
    EntryPublic,
    ErrorPublic,
    PostingPublic,
    TransactionPublic,
)
from ledger_core.model import Account, PostingRecord, Transaction, flag_names
from ledger_core.money import format_amount

API_PREFIX = "/api/v1"


def status_url(idempotency_key: str) -> str:
    return f"{API_PREFIX}/postings/{idempotency_key}"


def account_public(account: Account) -> AccountPublic:
    return AccountPublic(
        id=account.id,
        name=account.name,
        account_type=account.account_type,
        currency=account.currency,
        status=account.status,
        flags=flag_names(account.flags),
        created_at=account.created_at,
    )


def balance_public(account: Account) -> BalancePublic:
    return BalancePublic(
        account_id=account.id,
        currency=account.currency,
        debits_posted=format_amount(account.debits_posted, account.currency),
        credits_posted=format_amount(account.credits_posted, account.currency),
        balance=format_amount(account.balance, account.currency),
    )


def transaction_public(transaction: Transaction) -> TransactionPublic:
    return TransactionPublic(
        id=transaction.id,
        idempotency_key=transaction.idempotency_key,
        reference=transaction.reference,
        description=transaction.description,
        currency=transaction.currency,
        entries=[
            EntryPublic(
                account_id=entry.account_id,
                direction=entry.direction,
                amount=format_amount(entry.amount_minor, transaction.currency),
            )
            for entry in transaction.entries
        ],
        metadata=transaction.metadata,
        posted_at=transaction.posted_at,
    )


def posting_public(record: PostingRecord) -> PostingPublic:
    return PostingPublic(
        idempotency_key=record.idempotency_key,
        status=record.status.value,
        status_url=status_url(record.idempotency_key),
        transaction=None if record.transaction is None else transaction_public(record.transaction),
        error=None
        if record.error_code is None
        else ErrorPublic(code=record.error_code, detail=record.error_detail),
    )
