"""Worked examples at the edges of the engine: totals at the largest BIGINT on the credit
side, and the detail a client reads for each refusal.

The chart of accounts and the helpers are those of `test_engine_examples.py`.
"""

from __future__ import annotations

from ledger_core.engine import apply_postings
from ledger_core.money import BIGINT_MAX
from tests.unit.test_engine_examples import (
    ALICE,
    CASH,
    CLOSED,
    MERCHANT,
    NOWHERE,
    RECEIVABLE,
    YEN_CASH,
    balance,
    codes,
    cr,
    dr,
    opening_ledger,
    posted,
    queue,
)


def test_a_credit_total_may_reach_bigint_exactly_but_not_pass_it() -> None:
    """The merchant's posted credits are 1.00 below the largest storable amount.

    In acceptance order:
        1. Dr cash 1.01   Cr merchant 1.01   -> balance_overflow
        2. Dr cash 1.00   Cr merchant 1.00   -> posted; merchant credits are exactly BIGINT_MAX
        3. Dr cash 0.01   Cr merchant 0.01   -> balance_overflow
    """
    before = opening_ledger(balance(MERCHANT, credits_minor=BIGINT_MAX - 100))
    batch = queue(
        [dr(CASH, "1.01"), cr(MERCHANT, "1.01")],
        [dr(CASH, "1.00"), cr(MERCHANT, "1.00")],
        [dr(CASH, "0.01"), cr(MERCHANT, "0.01")],
    )

    after, outcomes = apply_postings(before, batch)

    assert codes(outcomes) == ["balance_overflow", "posted", "balance_overflow"]
    assert after[MERCHANT].credits_posted == BIGINT_MAX
    assert posted(after, CASH) == ("1.00", "0.00")


def test_both_totals_of_one_account_may_sit_at_bigint() -> None:
    """Cash has debits at BIGINT_MAX - 1 and credits at BIGINT_MAX - 1 (balance zero).

    Dr cash 0.01, Cr cash 0.01 takes both totals to exactly BIGINT_MAX: posted.
    """
    before = opening_ledger(
        balance(CASH, debits_minor=BIGINT_MAX - 1, credits_minor=BIGINT_MAX - 1)
    )

    after, outcomes = apply_postings(before, queue([dr(CASH, "0.01"), cr(CASH, "0.01")]))

    assert codes(outcomes) == ["posted"]
    assert (after[CASH].debits_posted, after[CASH].credits_posted) == (BIGINT_MAX, BIGINT_MAX)


def test_each_refusal_detail_names_the_account_and_the_reason() -> None:
    """One refused posting per code, in the documented order of precedence."""
    before = opening_ledger(balance(MERCHANT, credits_minor=BIGINT_MAX))
    batch = queue(
        [dr(CASH, "1.00"), cr(NOWHERE, "1.00")],
        [dr(CASH, "1.00"), cr(CLOSED, "1.00")],
        [dr(CASH, "1.00"), cr(YEN_CASH, "1.00")],
        [dr(CASH, "1.00"), cr(MERCHANT, "1.00")],
        [dr(ALICE, "1.00"), cr(CASH, "1.00")],
        [dr(CASH, "1.00"), cr(RECEIVABLE, "1.00")],
    )

    after, outcomes = apply_postings(before, batch)

    assert [(o.code, o.detail) for o in outcomes] == [
        ("account_not_found", f"account {NOWHERE} does not exist"),
        ("account_inactive", f"account {CLOSED} is inactive"),
        ("currency_mismatch", f"account {YEN_CASH} holds JPY, the transaction is in USD"),
        ("balance_overflow", f"account {MERCHANT} would pass the largest amount"),
        ("insufficient_funds", f"account {ALICE} would have debits greater than credits"),
        ("exceeds_debits", f"account {RECEIVABLE} would have credits greater than debits"),
    ]
    assert after == before
