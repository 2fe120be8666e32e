"""Worked examples at the edges of the engine: totals at the largest storable total and past
BIGINT, the largest amount of one entry, and the detail a client reads for each refusal.

The chart of accounts and the helpers are those of `test_engine_examples.py`.
"""

from __future__ import annotations

from ledger_core.engine import apply_postings
from ledger_core.money import BIGINT_MAX, TOTAL_MAX
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
    stored,
)


def test_a_credit_total_may_reach_the_largest_total_exactly_but_not_pass_it() -> None:
    """The merchant's posted credits are 1.00 below the largest storable total.

    In acceptance order:
        1. Dr cash 1.01   Cr merchant 1.01   -> balance_overflow
        2. Dr cash 1.00   Cr merchant 1.00   -> posted; merchant credits are exactly TOTAL_MAX
        3. Dr cash 0.01   Cr merchant 0.01   -> balance_overflow
    """
    before = opening_ledger(balance(MERCHANT, credits_minor=TOTAL_MAX - 100))
    batch = queue(
        [dr(CASH, "1.01"), cr(MERCHANT, "1.01")],
        [dr(CASH, "1.00"), cr(MERCHANT, "1.00")],
        [dr(CASH, "0.01"), cr(MERCHANT, "0.01")],
    )

    after, outcomes = apply_postings(before, batch)

    assert codes(outcomes) == ["balance_overflow", "posted", "balance_overflow"]
    assert after[MERCHANT].credits_posted == TOTAL_MAX
    assert posted(after, CASH) == ("1.00", "0.00")


def test_totals_pass_bigint_and_the_account_keeps_posting_both_ways() -> None:
    """Cash has debits and credits at BIGINT_MAX, where BIGINT totals used to freeze it:
    every later posting on either side was refused with balance_overflow.

        1. Dr cash      0.01   Cr merchant 0.01   -> posted; cash debits BIGINT_MAX + 1
        2. Dr merchant  5.00   Cr cash     5.00   -> posted; cash credits BIGINT_MAX + 500
    """
    before = opening_ledger(balance(CASH, debits_minor=BIGINT_MAX, credits_minor=BIGINT_MAX))
    batch = queue(
        [dr(CASH, "0.01"), cr(MERCHANT, "0.01")],
        [dr(MERCHANT, "5.00"), cr(CASH, "5.00")],
    )

    after, outcomes = apply_postings(before, batch)

    assert codes(outcomes) == ["posted", "posted"]
    assert after[CASH].debits_posted == BIGINT_MAX + 1
    assert after[CASH].credits_posted == BIGINT_MAX + 500
    assert posted(after, MERCHANT) == ("5.00", "0.01")


def test_an_entry_of_exactly_the_largest_amount_posts_and_one_cent_more_is_refused() -> None:
    """The default largest amount of one entry is 10**15 minor units: 10 trillion USD.

    1. Dr cash 10000000000000.01   Cr merchant 10000000000000.01   -> invalid_amount
    2. Dr cash 10000000000000.00   Cr merchant 10000000000000.00   -> posted
    """
    batch = stored(
        [dr(CASH, "10000000000000.01"), cr(MERCHANT, "10000000000000.01")],
        [dr(CASH, "10000000000000.00"), cr(MERCHANT, "10000000000000.00")],
    )

    after, outcomes = apply_postings(opening_ledger(), batch)

    assert [(o.code, o.detail) for o in outcomes] == [
        (
            "invalid_amount",
            "amount 10000000000000.01 USD is above the largest amount of one entry, "
            "10000000000000.00 USD",
        ),
        (None, None),
    ]
    assert posted(after, CASH) == ("10000000000000.00", "0.00")


def test_the_engine_holds_the_deployments_largest_amount_of_one_entry() -> None:
    """With `entry_amount_max_minor` set to 100 (1.00 USD), a posting accepted under a
    larger limit is refused when applied; one of exactly 1.00 posts."""
    batch = queue(
        [dr(CASH, "1.01"), cr(MERCHANT, "1.01")],
        [dr(CASH, "1.00"), cr(MERCHANT, "1.00")],
    )

    after, outcomes = apply_postings(opening_ledger(), batch, amount_max_minor=100)

    assert [(o.code, o.detail) for o in outcomes] == [
        ("invalid_amount", "amount 1.01 USD is above the largest amount of one entry, 1.00 USD"),
        (None, None),
    ]
    assert posted(after, MERCHANT) == ("0.00", "1.00")


def test_each_refusal_detail_names_the_account_and_the_reason() -> None:
    """One refused posting per code, in the documented order of precedence."""
    before = opening_ledger(balance(MERCHANT, credits_minor=TOTAL_MAX))
    batch = stored(
        [dr(CASH, "1.00"), cr(CASH, "1.00")],
        [dr(CASH, "10000000000000.01"), cr(MERCHANT, "10000000000000.01")],
        [dr(CASH, "1.00"), cr(NOWHERE, "1.00")],
        [dr(CASH, "1.00"), cr(CLOSED, "1.00")],
        [dr(CASH, "1.00"), cr(YEN_CASH, "1.00")],
        [dr(CASH, "1.00"), cr(MERCHANT, "1.00")],
        [dr(ALICE, "1.00"), cr(CASH, "1.00")],
        [dr(CASH, "1.00"), cr(RECEIVABLE, "1.00")],
    )

    after, outcomes = apply_postings(before, batch)

    assert [(o.code, o.detail) for o in outcomes] == [
        (
            "accounts_must_be_different",
            f"account {CASH} is both debited and credited; "
            "a transaction moves money between different accounts",
        ),
        (
            "invalid_amount",
            "amount 10000000000000.01 USD is above the largest amount of one entry, "
            "10000000000000.00 USD",
        ),
        ("account_not_found", f"account {NOWHERE} does not exist"),
        ("account_inactive", f"account {CLOSED} is inactive"),
        ("currency_mismatch", f"account {YEN_CASH} holds JPY, the transaction is in USD"),
        ("balance_overflow", f"account {MERCHANT} would pass the largest amount"),
        ("insufficient_funds", f"account {ALICE} would have debits greater than credits"),
        ("exceeds_debits", f"account {RECEIVABLE} would have credits greater than debits"),
    ]
    assert after == before
