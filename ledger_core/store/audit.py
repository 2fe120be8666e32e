"""Read-only invariant checks of a live ledger (`ledgerflow verify`).

Like the repository, this module speaks SQL, but only SELECTs. Each check returns
readable lines naming what is wrong; an empty report means the ledger holds:
  - per currency, total debits equal total credits;
  - every account's posted totals equal the sums of its entries;
  - every transaction's entries sum to zero;
  - no account breaks its flags;
  - every posted request has exactly one transaction and every transaction a posted request;
  - every transaction is in its request's ledger, and every entry's account in its
    transaction's ledger (ledgers are tenants);
  - every queued request's partition has a live job (the caller passes in which have one).
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, case, func, literal, select

from ledger_core.store.database import Database, Repository
from ledger_core.store.tables import (
    Total,
    TotalSum,
    accounts,
    entries,
    posting_requests,
    transactions,
)

# Sums are `TotalSum`: exact on both dialects, so a ledger whose totals passed 2**63 - 1
# (which the API accepts) is checked rather than crashing SQLite's sum(). They are compared
# in SQL with the stored totals, and debits with credits rather than summed signed.
_debits = TotalSum(case((entries.c.direction == "debit", entries.c.amount_minor), else_=0))
_credits = TotalSum(case((entries.c.direction == "credit", entries.c.amount_minor), else_=0))
_ZERO = literal(0, Total())
LINES_PER_CHECK_MAX = 20


@dataclass
class AuditReport:
    problems: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def _currencies_balance(connection: Connection) -> list[str]:
    rows = connection.execute(
        select(entries.c.currency, _debits, _credits).group_by(entries.c.currency)
    ).all()
    return [
        f"currency {row[0]}: debits {row[1]} != credits {row[2]} (minor units)"
        for row in rows
        if row[1] != row[2]
    ]


def _accounts_match_entries(connection: Connection) -> list[str]:
    sums = (
        select(entries.c.account_id, _debits.label("debits"), _credits.label("credits"))
        .group_by(entries.c.account_id)
        .subquery()
    )
    rows = connection.execute(
        select(
            accounts.c.id,
            accounts.c.debits_posted,
            accounts.c.credits_posted,
            func.coalesce(sums.c.debits, _ZERO, type_=Total()),
            func.coalesce(sums.c.credits, _ZERO, type_=Total()),
        )
        .select_from(accounts.outerjoin(sums, sums.c.account_id == accounts.c.id))
        .where(
            (accounts.c.debits_posted != func.coalesce(sums.c.debits, _ZERO))
            | (accounts.c.credits_posted != func.coalesce(sums.c.credits, _ZERO))
        )
        .limit(LINES_PER_CHECK_MAX)
    ).all()
    return [
        f"account {row[0]}: stored debits/credits {row[1]}/{row[2]} "
        f"but entries sum to {row[3]}/{row[4]}"
        for row in rows
    ]


def _transactions_sum_to_zero(connection: Connection) -> list[str]:
    rows = connection.execute(
        select(transactions.c.id, _debits, _credits)
        .select_from(transactions.join(entries))
        .group_by(transactions.c.id)
        .having(_debits != _credits)
        .limit(LINES_PER_CHECK_MAX)
    ).all()
    return [f"transaction {row[0]}: entries sum to {row[1] - row[2]}, not 0" for row in rows]


def _flags_hold(connection: Connection) -> list[str]:
    rows = connection.execute(
        select(accounts.c.id, accounts.c.debits_posted, accounts.c.credits_posted)
        .where(
            (
                (accounts.c.flags.op("&")(1) != 0)
                & (accounts.c.debits_posted > accounts.c.credits_posted)
            )
            | (
                (accounts.c.flags.op("&")(2) != 0)
                & (accounts.c.credits_posted > accounts.c.debits_posted)
            )
        )
        .limit(LINES_PER_CHECK_MAX)
    ).all()
    return [
        f"account {row[0]}: breaks its flags with debits {row[1]}, credits {row[2]}" for row in rows
    ]


def _requests_match_transactions(connection: Connection) -> list[str]:
    joined = posting_requests.outerjoin(
        transactions, transactions.c.request_id == posting_requests.c.id
    )
    rows = connection.execute(
        select(posting_requests.c.id, posting_requests.c.status, transactions.c.id)
        .select_from(joined)
        .where(
            ((posting_requests.c.status == "posted") & transactions.c.id.is_(None))
            | ((posting_requests.c.status != "posted") & transactions.c.id.is_not(None))
        )
        .limit(LINES_PER_CHECK_MAX)
    ).all()
    return [f"request {row[0]} is {row[1]} but its transaction is {row[2]}" for row in rows]


def _entries_in_their_ledger(connection: Connection) -> list[str]:
    requests = posting_requests.join(
        transactions, transactions.c.request_id == posting_requests.c.id
    )
    moved = connection.execute(
        select(transactions.c.id, transactions.c.ledger, posting_requests.c.ledger)
        .select_from(requests)
        .where(transactions.c.ledger != posting_requests.c.ledger)
        .limit(LINES_PER_CHECK_MAX)
    ).all()
    legs = entries.join(
        transactions, transactions.c.position == entries.c.transaction_position
    ).join(accounts, accounts.c.id == entries.c.account_id)
    crossing = connection.execute(
        select(
            transactions.c.id,
            transactions.c.ledger,
            accounts.c.id,
            accounts.c.ledger,
            entries.c.ledger,
        )
        .select_from(legs)
        .where(
            (accounts.c.ledger != transactions.c.ledger)
            | (entries.c.ledger != transactions.c.ledger)
        )
        .limit(LINES_PER_CHECK_MAX)
    ).all()
    return [
        f"transaction {row[0]} is in ledger {row[1]!r} but its request in {row[2]!r}"
        for row in moved
    ] + [
        f"transaction {row[0]} of ledger {row[1]!r} names account {row[2]} of ledger {row[3]!r}"
        f" (the entry says {row[4]!r})"
        for row in crossing
    ]


def _queued_are_carried(
    connection: Connection, carried: Set[int], accepted_before: datetime
) -> list[str]:
    rows = connection.execute(
        select(posting_requests.c.partition, func.max(posting_requests.c.id), func.count())
        .where(
            posting_requests.c.status == "queued",
            posting_requests.c.accepted_at < accepted_before,
        )
        .group_by(posting_requests.c.partition)
    ).all()
    return [
        f"partition {row[0]}: {row[2]} queued requests up to id {row[1]}, "
        "but no live job will apply them"
        for row in rows
        if int(row[0]) not in carried
    ]


def audit(database: Database, *, carried: Set[int], grace_s: float) -> AuditReport:
    """Run every check in one read snapshot; `carried`: partitions that have a live job.
    Queued requests younger than `grace_s` by the database's clock are not yet expected
    to be carried."""
    report = AuditReport()
    isolation = "REPEATABLE READ" if database.dialect == "postgresql" else "SERIALIZABLE"
    with (
        database.engine.connect().execution_options(isolation_level=isolation) as connection,
        connection.begin(),
    ):
        for check in (
            _currencies_balance,
            _accounts_match_entries,
            _transactions_sum_to_zero,
            _flags_hold,
            _requests_match_transactions,
            _entries_in_their_ledger,
        ):
            report.problems.extend(check(connection))
        accepted_before = Repository(connection).now() - timedelta(seconds=grace_s)
        report.problems.extend(_queued_are_carried(connection, carried, accepted_before))
        for status, count in connection.execute(
            select(posting_requests.c.status, func.count()).group_by(posting_requests.c.status)
        ).all():
            report.counts[f"requests_{status}"] = int(count)
        report.counts["accounts"] = int(
            connection.execute(select(func.count()).select_from(accounts)).scalar_one()
        )
        report.counts["transactions"] = int(
            connection.execute(select(func.count()).select_from(transactions)).scalar_one()
        )
    return report
