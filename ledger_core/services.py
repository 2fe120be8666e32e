"""Use cases. Each one owns its database transaction; `api/` and `worker/` call only these.

Acceptance (`accept`) records posting requests durably under their client-scoped
idempotency key and never touches account rows. Applying (`apply_next_batch`) takes the
oldest queued requests of one partition, locks their accounts in sorted order, runs the
pure engine and writes every outcome in the same transaction, so a request is applied
at most once whatever is redelivered or replayed.

Ledgers are tenants: every account, request and transaction belongs to one ledger, and
each use case acts within the ledger it is given (the API key's). An account or
transaction of another ledger is not found, exactly as one that does not exist.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from ledger_core.engine import apply_postings
from ledger_core.errors import (
    AccountNotFound,
    IdempotencyConflict,
    PostingNotFound,
    TransactionNotFound,
    TransientFault,
)
from ledger_core.model import (
    Account,
    AccountFlag,
    AccountId,
    AccountStatus,
    AccountType,
    ClientId,
    Fence,
    Outcome,
    Page,
    Posted,
    Posting,
    PostingRecord,
    PostingStatus,
    QueuedPosting,
    RequestId,
    Sender,
    Transaction,
    TransactionId,
)
from ledger_core.operations import Operations
from ledger_core.rules import (
    ENTRY_AMOUNT_MAX_MINOR,
    canonical_document,
    check_account,
    document_hash,
    partition_of,
)
from ledger_core.store.apply import BatchWrite
from ledger_core.store.database import Database, Repository
from ledger_core.store.intake import IntakeRow
from ledger_core.trail import ACCOUNT_CREATED, ACCOUNT_UPDATED, Actor

log = logging.getLogger(__name__)
T = TypeVar("T")


def retry_transient(
    action: Callable[[], T],
    *,
    attempts_max: int,
    on_retry: Callable[[TransientFault], None] | None = None,
) -> T:
    """Run `action`, retrying `TransientFault` with jittered exponential backoff."""
    attempt = 0
    while True:
        try:
            return action()
        except TransientFault as fault:
            attempt += 1
            if attempt > attempts_max:
                raise
            if on_retry is not None:
                on_retry(fault)
            time.sleep(min(0.5, 0.005 * 2**attempt) * (0.5 + random.random()))


@dataclass(frozen=True)
class Accepted:
    """The answer to one posting given to `accept`: the stored request or a conflict."""

    record: PostingRecord | None
    created: bool = False
    conflict: IdempotencyConflict | None = None

    def stored(self) -> PostingRecord:
        """The stored request; raises the conflict when the key holds another body."""
        if self.record is None:
            raise self.conflict or IdempotencyConflict("the key holds another posting")
        return self.record


@dataclass(frozen=True)
class AppliedBatch:
    partitions: tuple[int, ...]
    postings: list[QueuedPosting]
    outcomes: list[Outcome]
    posted: Posted = field(default_factory=Posted)


def _partitions(partitions: int | Sequence[int]) -> tuple[int, ...]:
    return (partitions,) if isinstance(partitions, int) else tuple(sorted(set(partitions)))


def _fence_list(fences: Fence | Sequence[Fence] | None) -> Sequence[Fence]:
    return () if fences is None else (fences,) if isinstance(fences, Fence) else fences


def _conflict(idempotency_key: str) -> Accepted:
    return Accepted(
        None,
        conflict=IdempotencyConflict(
            f"idempotency key {idempotency_key!r} was used for a different body"
        ),
    )


def _apply_locked(
    repository: Repository, queued: Sequence[QueuedPosting], *, amount_max_minor: int
) -> tuple[list[Outcome], Posted]:
    """Lock the accounts of `queued` in sorted order, run the engine, write every outcome."""
    touched = {e.account_id for q in queued for e in q.posting.entries}
    balances = repository.lock_balances(touched)
    after, outcomes = apply_postings(balances, queued, amount_max_minor=amount_max_minor)
    changed = [b for account_id, b in after.items() if b != balances.get(account_id)]
    by_request = {q.request_id: q for q in queued}
    posted = [by_request[o.request_id] for o in outcomes if o.posted]
    return outcomes, repository.write_batch(BatchWrite(posted, changed, outcomes))


class Ledger(Operations):
    """The use cases of the ledger; the operators' ones are in `ledger_core.operations`.

    `entry_amount_max_minor` is the deployment's largest amount of one entry
    (`Settings.entry_amount_max_minor`), which the engine holds when applying."""

    def __init__(
        self,
        database: Database,
        *,
        partitions: int,
        retries_max: int = 5,
        on_retry: Callable[[TransientFault], None] | None = None,
        entry_amount_max_minor: int = ENTRY_AMOUNT_MAX_MINOR,
    ) -> None:
        self.database = database
        self.partitions = partitions
        self.retries_max = retries_max
        self.on_retry = on_retry
        self.entry_amount_max_minor = entry_amount_max_minor

    def _retrying(self, action: Callable[[], T]) -> T:
        return retry_transient(action, attempts_max=self.retries_max, on_retry=self.on_retry)

    # Accounts

    def open_account(
        self,
        *,
        name: str,
        account_type: AccountType,
        currency: str,
        flags: AccountFlag,
        ledger: str,
        actor: Actor,
    ) -> Account:
        """A new account of `ledger`: only that ledger's keys see it or post to it. The
        audit trail records `actor` as its creator, in the same transaction."""
        check_account(name=name, currency=currency, flags=flags)
        account = Account(
            id=AccountId(uuid.uuid4()),
            name=name,
            account_type=account_type,
            currency=currency,
            status=AccountStatus.ACTIVE,
            flags=flags,
            debits_posted=0,
            credits_posted=0,
            created_at=datetime.now(UTC),
            ledger=ledger,
        )

        def insert() -> Account:
            with self.database.transaction() as repository:
                created = repository.insert_account(account)
                facts = {"name": created.name, "currency": created.currency}
                repository.insert_event(actor, ACCOUNT_CREATED, f"account:{created.id}", facts)
                return created

        return self._retrying(insert)

    def get_account(self, account_id: AccountId, *, ledger: str) -> Account:
        with self.database.transaction() as repository:
            account = repository.get_account(account_id, ledger)
        if account is None:
            raise AccountNotFound(f"account {account_id} does not exist")
        return account

    def list_accounts(self, cursor: str | None, limit: int, *, ledger: str) -> Page[Account]:
        with self.database.transaction() as repository:
            items, next_cursor = repository.list_accounts(ledger, cursor, limit)
        return Page(items, next_cursor)

    def set_account_status(
        self, account_id: AccountId, status: AccountStatus, *, ledger: str, actor: Actor
    ) -> Account:
        with self.database.transaction() as repository:
            account = repository.set_account_status(account_id, status, ledger)
            if account is None:
                raise AccountNotFound(f"account {account_id} does not exist")
            target = f"account:{account.id}"
            repository.insert_event(actor, ACCOUNT_UPDATED, target, {"status": status.value})
        return account

    # Intake

    def accept(self, requests: Sequence[tuple[Sender, Posting]]) -> list[Accepted]:
        """Durably record posting requests in one commit; one answer per request, in order.

        A key seen before with the same body answers with the stored request (a replay);
        with a different body it answers with an `IdempotencyConflict` and stores nothing.
        Each request records its sender's ledger, the only one whose accounts it may name.
        """
        rows = [self._intake_row(sender, posting) for sender, posting in requests]

        def record() -> list[Accepted]:
            with self.database.transaction() as repository:
                results = repository.record_requests(rows)
            return [
                Accepted(result.record, result.created)
                if result.record.body_hash == row.body_hash
                else _conflict(row.idempotency_key)
                for row, result in zip(rows, results, strict=True)
            ]

        return self._retrying(record)

    def _intake_row(self, sender: Sender, posting: Posting) -> IntakeRow:
        document = canonical_document(posting)
        return IntakeRow(
            client_id=sender.client_id,
            ledger=sender.ledger,
            idempotency_key=posting.idempotency_key,
            body_hash=document_hash(document),
            partition=partition_of(posting.routing_account_id, self.partitions),
            document=document,
        )

    def post_directly(self, sender: Sender, posting: Posting) -> Accepted:
        """Record and apply one posting in a single transaction, as a synchronous ledger does.

        This is the `direct` mode, kept to measure the queue against: the same intake row,
        row locks, engine and writes, one request at a time.
        """
        client_id = sender.client_id
        row = self._intake_row(sender, posting)

        def post() -> Accepted:
            with self.database.transaction() as repository:
                [result] = repository.record_requests([row])
                if result.record.body_hash != row.body_hash:
                    return _conflict(row.idempotency_key)
                if result.created:
                    queued = QueuedPosting(
                        result.record.request_id, client_id, posting, ledger=sender.ledger
                    )
                    _apply_locked(
                        repository, [queued], amount_max_minor=self.entry_amount_max_minor
                    )
                record = repository.get_record(client_id, posting.idempotency_key)
            if record is None:
                # A programmer error, not a client's: the row was written in this transaction.
                raise RuntimeError(f"request {posting.idempotency_key!r} missing after intake")
            return Accepted(record, result.created)

        return self._retrying(post)

    def get_posting(self, client_id: ClientId, idempotency_key: str) -> PostingRecord:
        with self.database.transaction() as repository:
            record = repository.get_record(client_id, idempotency_key)
        if record is None:
            raise PostingNotFound(f"no posting was accepted under key {idempotency_key!r}")
        return record

    def statuses(self, request_ids: Sequence[RequestId]) -> dict[RequestId, PostingStatus]:
        with self.database.transaction() as repository:
            return repository.statuses(request_ids)

    # Applying

    def apply_next_batch(
        self,
        partitions: int | Sequence[int],
        limit: int,
        fences: Fence | Sequence[Fence] | None = None,
    ) -> AppliedBatch:
        """Apply the oldest queued requests of one or more partitions in one transaction,
        in acceptance order (so in order per routing account).

        With `fences`, the transaction first checks that every lease still holds and keeps
        them share-locked to the commit; `LeaseLost` otherwise, and nothing is written.
        """
        chosen = _partitions(partitions)
        fenced = _fence_list(fences)

        def apply() -> AppliedBatch:
            with self.database.transaction() as repository:
                repository.check_fences(fenced)
                queued = repository.lock_queued(chosen, limit)
                if not queued:
                    return AppliedBatch(chosen, [], [])
                outcomes, posted = _apply_locked(
                    repository, queued, amount_max_minor=self.entry_amount_max_minor
                )
            return AppliedBatch(chosen, queued, outcomes, posted)

        return self._retrying(apply)

    def has_queued(self, partitions: int | Sequence[int]) -> bool:
        """Whether any of `partitions` holds a queued request; one query, no transaction."""
        chosen = _partitions(partitions)

        def probe() -> bool:
            with self.database.reads() as repository:
                return repository.has_queued(chosen)

        return self._retrying(probe)

    def fail_oldest(
        self,
        partitions: int | Sequence[int],
        code: str,
        detail: str,
        fences: Fence | Sequence[Fence] | None = None,
    ) -> RequestId | None:
        """Mark the oldest queued request of `partitions` `failed`: it could not be applied."""
        chosen = _partitions(partitions)
        fenced = _fence_list(fences)

        def fail() -> RequestId | None:
            with self.database.transaction() as repository:
                repository.check_fences(fenced)
                oldest = repository.lock_oldest_queued_id(chosen)
                if oldest is not None:
                    repository.mark_failed(oldest, code, detail)
            return oldest

        request_id = self._retrying(fail)
        if request_id is None:
            return None
        log.error("request %s failed: %s %s", request_id, code, detail)
        return request_id

    # Reads

    def get_transaction(self, transaction_id: TransactionId, *, ledger: str) -> Transaction:
        with self.database.transaction() as repository:
            transaction = repository.get_transaction(transaction_id, ledger)
        if transaction is None:
            raise TransactionNotFound(f"transaction {transaction_id} does not exist")
        return transaction

    def list_transactions(
        self, account_id: AccountId | None, cursor: str | None, limit: int, *, ledger: str
    ) -> Page[Transaction]:
        with self.database.transaction() as repository:
            items, next_cursor = repository.list_transactions(ledger, account_id, cursor, limit)
        return Page(items, next_cursor)
