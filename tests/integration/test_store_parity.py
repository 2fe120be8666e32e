"""The two write paths of an applied batch store the same ledger.

On PostgreSQL, `store.apply` builds transactions and entries in SQL from the documents
stored at intake; on SQLite, from the decoded `Posting` objects. These tests hold the
SQL decoding to `rules.posting_from_document` on awkward documents (non-ASCII and emoji
text, quotes and backslashes, 1 minor unit, the largest amount of one entry, currencies of
exponent 0 and 3, three entries, no optional fields), then run one sequence of accounts,
postings and refusals on both dialects and compare every row they store, a total of 38
digits (the largest) among them. One account is of another ledger (tenant): naming it is
refused as naming a missing one, on both.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from ledger_core.model import (
    Account,
    AccountFlag,
    AccountId,
    AccountStatus,
    AccountType,
    ClientId,
    Direction,
    Entry,
    Posting,
    Sender,
)
from ledger_core.money import TOTAL_MAX, parse_amount
from ledger_core.rules import (
    ENTRY_AMOUNT_MAX_MINOR,
    RawEntry,
    build_posting,
    posting_from_document,
)
from ledger_core.services import AppliedBatch
from ledger_core.settings import Settings
from ledger_core.store import Database
from ledger_core.store.tables import accounts, entries, posting_requests, transactions
from ledgerflow.migrate import upgrade_to_head
from runtime.context import Runtime, build_runtime

CLIENT = ClientId("parity-client")
LEDGER = "parity-ledger"
SENDER = Sender(CLIENT, LEDGER)


def _id(n: int) -> AccountId:
    return AccountId(uuid.UUID(f"00000000-0000-4000-8000-{n:012d}"))


CASH, MERCHANT, FEES, WALLET, CLOSED = _id(1), _id(2), _id(3), _id(4), _id(5)
YEN_A, YEN_B, DINAR_A, DINAR_B, MISSING = _id(6), _id(7), _id(8), _id(9), _id(99)
ELSEWHERE = _id(10)  # an account of another ledger
ACCOUNTS = [
    (CASH, "Cash", AccountType.ASSET, "USD", AccountFlag.NONE, AccountStatus.ACTIVE),
    (MERCHANT, "Merchant", AccountType.LIABILITY, "USD", AccountFlag.NONE, AccountStatus.ACTIVE),
    (FEES, "Fees", AccountType.REVENUE, "USD", AccountFlag.NONE, AccountStatus.ACTIVE),
    (
        WALLET,
        "Wallet",
        AccountType.LIABILITY,
        "USD",
        AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS,
        AccountStatus.ACTIVE,
    ),
    (CLOSED, "Closed", AccountType.ASSET, "USD", AccountFlag.NONE, AccountStatus.INACTIVE),
    (YEN_A, "Yen A", AccountType.ASSET, "JPY", AccountFlag.NONE, AccountStatus.ACTIVE),
    (YEN_B, "Yen B", AccountType.EQUITY, "JPY", AccountFlag.NONE, AccountStatus.ACTIVE),
    (DINAR_A, "Dinar A", AccountType.ASSET, "KWD", AccountFlag.NONE, AccountStatus.ACTIVE),
    (DINAR_B, "Dinar B", AccountType.EXPENSE, "KWD", AccountFlag.NONE, AccountStatus.ACTIVE),
]


def _posting(
    key: str, currency: str, legs: list[tuple[AccountId, str, str]], **extra: Any
) -> Posting:
    raw = [RawEntry(account, Direction(direction), amount) for account, direction, amount in legs]
    return build_posting(idempotency_key=key, currency=currency, entries=raw, **extra)


# Postings the engine accepts. Reference and description always differ, so a swap shows.
EDGE_POSTINGS = [
    _posting(
        "edge:unicode",
        "USD",
        [(CASH, "debit", "12.34"), (MERCHANT, "credit", "12.34")],
        reference='réf-€-😀 "quoted" back\\slash',
        description="Zürich → 東京 🚀\n\ttab, 'single' and \"double\" quotes, \\ and \\\\",
        metadata={"clé 🔑": "värde 👍", 'quote"key': "back\\slash\\", "emoji": "🇯🇵👨‍👩‍👧"},
    ),
    _posting(
        "edge:three-legs",
        "USD",
        [(CASH, "debit", "10.00"), (MERCHANT, "credit", "9.70"), (FEES, "credit", "0.30")],
        reference="three-legs",
        description="",
        metadata={"order": "42"},
    ),
    _posting(
        "edge:repeat-account",
        "USD",
        [(CASH, "debit", "0.01"), (CASH, "debit", "2.00"), (MERCHANT, "credit", "2.01")],
    ),
    _posting(
        "edge:largest-entry",
        "JPY",
        [(YEN_A, "debit", "1000000000000000"), (YEN_B, "credit", "1000000000000000")],
    ),
    _posting(
        "edge:one-fils",
        "KWD",
        [(DINAR_A, "debit", "0.001"), (DINAR_B, "credit", "0.001")],
        reference="fils",
        description="one minor unit of a 3-decimal currency",
    ),
    _posting("edge:fund-wallet", "USD", [(CASH, "debit", "3.00"), (WALLET, "credit", "3.00")]),
]


def _unchecked(key: str, currency: str, legs: list[tuple[AccountId, str, str]]) -> Posting:
    """A posting that skips `build_posting`, as an older version or a larger
    `entry_amount_max_minor` may have accepted it: the engine refuses it again."""
    return Posting(
        idempotency_key=key,
        currency=currency,
        entries=tuple(
            Entry(account, Direction(direction), parse_amount(amount, currency))
            for account, direction, amount in legs
        ),
    )


# Before the sequence, YEN_B's credits are set one largest entry below the largest total,
# so that "edge:largest-entry" takes them to exactly 38 nines.
YEN_B_CREDITS_BEFORE = TOTAL_MAX - ENTRY_AMOUNT_MAX_MINOR

# Postings the engine refuses, each routed by its first debited account.
REFUSED_POSTINGS = [
    _unchecked("refused:same-account", "USD", [(CASH, "debit", "1.00"), (CASH, "credit", "1.00")]),
    _unchecked(
        "refused:too-large",
        "USD",
        [(CASH, "debit", "10000000000000.01"), (MERCHANT, "credit", "10000000000000.01")],
    ),
    _posting("refused:overflow", "JPY", [(YEN_A, "debit", "1"), (YEN_B, "credit", "1")]),
    _posting("refused:insufficient", "USD", [(WALLET, "debit", "5.00"), (CASH, "credit", "5.00")]),
    _posting("refused:mismatch", "USD", [(CASH, "debit", "1.00"), (YEN_B, "credit", "1.00")]),
    _posting("refused:missing", "USD", [(CASH, "debit", "1.00"), (MISSING, "credit", "1.00")]),
    _posting("refused:elsewhere", "USD", [(CASH, "debit", "1.00"), (ELSEWHERE, "credit", "1.00")]),
    _posting("refused:inactive", "USD", [(CLOSED, "debit", "1.00"), (CASH, "credit", "1.00")]),
]
REFUSAL_CODES = {
    "refused:same-account": "accounts_must_be_different",
    "refused:too-large": "invalid_amount",
    "refused:overflow": "balance_overflow",
    "refused:insufficient": "insufficient_funds",
    "refused:mismatch": "currency_mismatch",
    "refused:missing": "account_not_found",
    "refused:elsewhere": "account_not_found",
    "refused:inactive": "account_inactive",
}


def open_accounts(database: Database) -> None:
    """The same accounts, under the same ids, on any store: those of `ACCOUNTS` in `LEDGER`,
    and `ELSEWHERE` in another ledger."""
    opened = [(*account, LEDGER) for account in ACCOUNTS]
    opened.append(
        (
            ELSEWHERE,
            "Elsewhere",
            AccountType.LIABILITY,
            "USD",
            AccountFlag.NONE,
            AccountStatus.ACTIVE,
            "another-ledger",
        )
    )
    with database.transaction() as repository:
        for account_id, name, account_type, currency, flags, status, ledger in opened:
            repository.insert_account(
                Account(
                    account_id,
                    name,
                    account_type,
                    currency,
                    status,
                    flags,
                    0,
                    0,
                    datetime.now(UTC),
                    ledger,
                )
            )


def apply_all(runtime: Runtime) -> list[AppliedBatch]:
    """Apply every partition in order until nothing is queued."""
    batches = [runtime.ledger.apply_next_batch(p, 100) for p in range(runtime.settings.partitions)]
    assert not any(runtime.ledger.has_queued(p) for p in range(runtime.settings.partitions))
    return [batch for batch in batches if batch.postings]


def stored_transactions(database: Database) -> list[tuple[int, Any, Posting]]:
    """(request id, transaction row, the posting its rows spell), in posting order."""
    with database.transaction() as repository:
        rows = repository.connection.execute(select(transactions).order_by(transactions.c.position))
        legs = repository.connection.execute(
            select(entries).order_by(entries.c.transaction_position, entries.c.id)
        ).all()
        result = []
        for row in rows.all():
            own = [leg for leg in legs if leg.transaction_position == row.position]
            assert {leg.currency for leg in own} == {row.currency}
            posting = Posting(
                idempotency_key=row.idempotency_key,
                currency=row.currency,
                entries=tuple(
                    Entry(AccountId(leg.account_id), Direction(leg.direction), leg.amount_minor)
                    for leg in own
                ),
                reference=row.reference,
                description=row.description,
                metadata=row.metadata,
            )
            result.append((row.request_id, row, posting))
    return result


def test_sql_decoding_of_stored_documents_equals_posting_from_document(runtime: Runtime) -> None:
    assert runtime.database.dialect == "postgresql"
    open_accounts(runtime.database)
    accepted = runtime.ledger.accept([(SENDER, posting) for posting in EDGE_POSTINGS])
    assert all(answer.created for answer in accepted)
    with runtime.database.transaction() as repository:
        documents = dict(
            repository.connection.execute(
                select(posting_requests.c.id, posting_requests.c.document)
            ).all()
        )
    for answer, posting in zip(accepted, EDGE_POSTINGS, strict=True):
        assert posting_from_document(documents[answer.stored().request_id]) == posting

    batches = apply_all(runtime)

    assert all(outcome.posted for batch in batches for outcome in batch.outcomes)
    stored = stored_transactions(runtime.database)
    assert len(stored) == len(EDGE_POSTINGS)
    for request_id, _row, from_sql in stored:
        assert from_sql == posting_from_document(documents[request_id])


def snapshot(database: Database) -> dict[str, Any]:
    """Everything an applied sequence stored, free of ids and times that differ by store."""
    posted = stored_transactions(database)
    keys = {request_id: posting.idempotency_key for request_id, _, posting in posted}
    with database.transaction() as repository:
        connection = repository.connection
        legs = connection.execute(
            select(
                transactions.c.request_id,
                entries.c.account_id,
                entries.c.direction,
                entries.c.amount_minor,
                entries.c.currency,
                entries.c.ledger,
                transactions.c.ledger,
            )
            .join_from(
                entries, transactions, entries.c.transaction_position == transactions.c.position
            )
            .order_by(entries.c.transaction_position, entries.c.id)
        ).all()
        totals = connection.execute(
            select(
                accounts.c.id,
                accounts.c.debits_posted,
                accounts.c.credits_posted,
                accounts.c.ledger,
            )
        ).all()
        requests = connection.execute(
            select(
                posting_requests.c.idempotency_key,
                posting_requests.c.status,
                posting_requests.c.error_code,
                posting_requests.c.error_detail,
                posting_requests.c.partition,
                posting_requests.c.body_hash,
                posting_requests.c.ledger,
            ).order_by(posting_requests.c.id)
        ).all()
    return {
        "transactions": [
            (p.idempotency_key, p.currency, p.reference, p.description, p.metadata)
            for _, _, p in posted
        ],
        "entries": [(keys[leg[0]], *leg[1:]) for leg in legs],
        "totals": sorted((str(row[0]), row[1], row[2], row[3]) for row in totals),
        "requests": [tuple(row) for row in requests],
    }


def run_sequence(runtime: Runtime) -> dict[str, Any]:
    """Open the accounts, accept every posting (one replayed), apply all; check the times."""
    database = runtime.database
    open_accounts(database)
    with database.transaction() as repository:
        repository.connection.execute(
            update(accounts)
            .where(accounts.c.id == YEN_B)
            .values(credits_posted=YEN_B_CREDITS_BEFORE)
        )
    accepted = runtime.ledger.accept([(SENDER, p) for p in EDGE_POSTINGS + REFUSED_POSTINGS])
    replay = runtime.ledger.accept([(SENDER, EDGE_POSTINGS[0])])
    assert all(a.created for a in accepted) and not replay[0].created
    assert all(a.stored().accepted_at.tzinfo is not None for a in accepted + replay)

    batches = apply_all(runtime)

    by_request = {row[0]: row[1] for row in stored_transactions(database)}
    for batch in batches:
        posted = [o.request_id for o in batch.outcomes if o.posted]
        assert set(batch.posted.transaction_ids) == set(posted)
        if posted:
            assert batch.posted.posted_at is not None and batch.posted.posted_at.tzinfo is not None
        for request_id, transaction_id in batch.posted.transaction_ids.items():
            assert str(by_request[request_id].id) == transaction_id
            assert by_request[request_id].posted_at == batch.posted.posted_at
    with database.transaction() as repository:
        moments = [
            *repository.connection.execute(select(accounts.c.created_at)).scalars(),
            *repository.connection.execute(select(posting_requests.c.accepted_at)).scalars(),
            *repository.connection.execute(select(posting_requests.c.finished_at)).scalars(),
            *repository.connection.execute(select(transactions.c.posted_at)).scalars(),
        ]
    assert moments and all(moment.tzinfo is not None for moment in moments)
    return snapshot(database)


def test_postgresql_and_sqlite_store_the_same_rows(runtime: Runtime, tmp_path: Path) -> None:
    embedded_settings = Settings(
        database_url=f"sqlite:///{tmp_path}/parity.db",
        redis_url=None,
        partitions=runtime.settings.partitions,
    )
    upgrade_to_head(embedded_settings.sqlalchemy_url())
    embedded = build_runtime(embedded_settings)
    try:
        assert embedded.database.dialect == "sqlite"
        on_sqlite = run_sequence(embedded)
    finally:
        embedded.database.dispose()
    on_postgresql = run_sequence(runtime)

    codes = {row[0]: row[2] for row in on_postgresql["requests"] if row[1] == "rejected"}
    assert codes == REFUSAL_CODES
    assert len(on_postgresql["transactions"]) == len(EDGE_POSTINGS)
    assert (str(YEN_B), 0, TOTAL_MAX, LEDGER) in on_postgresql["totals"]
    assert {leg[-2:] for leg in on_postgresql["entries"]} == {(LEDGER, LEDGER)}
    assert {row[-1] for row in on_postgresql["requests"]} == {LEDGER}
    details = {row[0]: row[3] for row in on_postgresql["requests"]}
    assert details["refused:elsewhere"] == f"account {ELSEWHERE} does not exist"
    assert details["refused:missing"] == f"account {MISSING} does not exist"
    for table in ("transactions", "entries", "totals", "requests"):
        assert on_sqlite[table] == on_postgresql[table], table
