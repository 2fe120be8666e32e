"""Worked examples of the posting engine, written as small ledgers before and after.

Each test opens a tiny chart of accounts, applies a batch of postings in acceptance order
and reads the result back the way a bookkeeper would: posted debits and credits per account,
and one outcome per posting. Amounts in the docstrings are USD unless marked otherwise.

The chart used throughout:

    cash            asset       USD   the bank account that receives card payments
    alice           liability   USD   Alice's wallet; debits_must_not_exceed_credits
    bob             liability   USD   Bob's wallet; debits_must_not_exceed_credits
    merchant        liability   USD   what the ledger owes the coffee shop
    fees            revenue     USD   the ledger's own income
    receivable      asset       USD   owed by the card scheme; credits_must_not_exceed_debits
    yen_cash        asset       JPY   a yen bank account
    closed          liability   USD   a wallet that was closed (inactive)

They are the accounts of the coffee shop's ledger (tenant), in which every posting here is
sent; `elsewhere` is an account of another ledger.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from ledger_core.engine import apply_postings
from ledger_core.model import (
    AccountFlag,
    AccountId,
    AccountStatus,
    Balance,
    ClientId,
    Direction,
    Entry,
    Outcome,
    Posting,
    QueuedPosting,
    RequestId,
)
from ledger_core.money import TOTAL_MAX, format_amount, parse_amount
from ledger_core.rules import RawEntry, build_posting

Balances = dict[AccountId, Balance]


def account_id(number: int) -> AccountId:
    return AccountId(uuid.UUID(int=number, version=4))


CASH = account_id(1)
ALICE = account_id(2)
BOB = account_id(3)
MERCHANT = account_id(4)
FEES = account_id(5)
RECEIVABLE = account_id(6)
YEN_CASH = account_id(7)
CLOSED = account_id(8)
NOWHERE = account_id(99)  # Never opened: absent from every balances map.
ELSEWHERE = account_id(50)  # Opened in another ledger.
NOWHERE_IN_BAKERY = account_id(51)  # The other ledger's till.
LEDGER = "coffee-shop"

WALLET = AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS
OWED = AccountFlag.CREDITS_MUST_NOT_EXCEED_DEBITS


def balance(
    account: AccountId,
    *,
    debits_minor: int = 0,
    credits_minor: int = 0,
    currency: str = "USD",
    flags: AccountFlag = AccountFlag.NONE,
    status: AccountStatus = AccountStatus.ACTIVE,
    ledger: str = LEDGER,
) -> Balance:
    return Balance(account, currency, status, flags, debits_minor, credits_minor, ledger)


def opening_ledger(*overrides: Balance) -> Balances:
    """The chart above with nothing posted, with `overrides` replacing accounts by id."""
    ledger = {
        b.account_id: b
        for b in (
            balance(CASH),
            balance(ALICE, flags=WALLET),
            balance(BOB, flags=WALLET),
            balance(MERCHANT),
            balance(FEES),
            balance(RECEIVABLE, flags=OWED),
            balance(YEN_CASH, currency="JPY"),
            balance(CLOSED, flags=WALLET, status=AccountStatus.INACTIVE),
            balance(ELSEWHERE, ledger="bakery"),
        )
    }
    ledger.update({b.account_id: b for b in overrides})
    return ledger


def dr(account: AccountId, amount: str) -> RawEntry:
    return RawEntry(account, Direction.DEBIT, amount)


def cr(account: AccountId, amount: str) -> RawEntry:
    return RawEntry(account, Direction.CREDIT, amount)


def queue(*entry_lists: Sequence[RawEntry], currency: str = "USD") -> list[QueuedPosting]:
    """One queued posting per entry list, with request ids 1, 2, 3... in acceptance order."""
    return [
        QueuedPosting(
            RequestId(number),
            ClientId("coffee-shop"),
            build_posting(idempotency_key=f"k-{number}", currency=currency, entries=entries),
            ledger=LEDGER,
        )
        for number, entries in enumerate(entry_lists, start=1)
    ]


def stored(*entry_lists: Sequence[RawEntry], currency: str = "USD") -> list[QueuedPosting]:
    """Like `queue`, but the postings skip `build_posting`, as an older version or a larger
    `entry_amount_max_minor` may have accepted them: for the rules the engine holds again."""
    return [
        QueuedPosting(
            RequestId(number),
            ClientId("coffee-shop"),
            Posting(
                idempotency_key=f"k-{number}",
                currency=currency,
                entries=tuple(
                    Entry(raw.account_id, raw.direction, parse_amount(raw.amount, currency))
                    for raw in entries
                ),
            ),
            ledger=LEDGER,
        )
        for number, entries in enumerate(entry_lists, start=1)
    ]


def posted(ledger: Mapping[AccountId, Balance], account: AccountId) -> tuple[str, str]:
    """An account's posted (debits, credits) written in its currency's major units."""
    b = ledger[account]
    return format_amount(b.debits_posted, b.currency), format_amount(b.credits_posted, b.currency)


def codes(outcomes: Sequence[Outcome]) -> list[str | None]:
    """The word posted for accepted postings, the refusal code for refused ones."""
    return ["posted" if o.posted else o.code for o in outcomes]


# Everyday postings


def test_customer_tops_up_her_wallet_and_buys_coffee() -> None:
    """Alice tops up 50.00 by card, then buys coffee for 4.50 (4.30 to the shop, 0.20 fee).

    Before: every account is empty.

        1. Dr receivable 50.00   Cr alice     50.00    top-up, owed to us by the card scheme
        2. Dr cash       50.00   Cr receivable 50.00   the card scheme settles
        3. Dr alice       4.50   Cr merchant   4.30    the purchase
                                 Cr fees       0.20

    After:             debits   credits
        cash            50.00      0.00
        receivable      50.00     50.00
        alice            4.50     50.00    balance 45.50
        merchant         0.00      4.30
        fees             0.00      0.20
    """
    before = opening_ledger()
    batch = queue(
        [dr(RECEIVABLE, "50.00"), cr(ALICE, "50.00")],
        [dr(CASH, "50.00"), cr(RECEIVABLE, "50.00")],
        [dr(ALICE, "4.50"), cr(MERCHANT, "4.30"), cr(FEES, "0.20")],
    )

    after, outcomes = apply_postings(before, batch)

    assert outcomes == [Outcome(RequestId(n), True) for n in (1, 2, 3)]
    assert posted(after, CASH) == ("50.00", "0.00")
    assert posted(after, RECEIVABLE) == ("50.00", "50.00")
    assert posted(after, ALICE) == ("4.50", "50.00")
    assert posted(after, MERCHANT) == ("0.00", "4.30")
    assert posted(after, FEES) == ("0.00", "0.20")
    assert after[BOB] == before[BOB]
    assert after[YEN_CASH] == before[YEN_CASH]
    assert sum(b.debits_posted for b in after.values()) == sum(
        b.credits_posted for b in after.values()
    )


def test_engine_does_not_mutate_the_balances_it_is_given() -> None:
    before = opening_ledger()
    snapshot = dict(before)

    after, _ = apply_postings(before, queue([dr(CASH, "1.00"), cr(ALICE, "1.00")]))

    assert before == snapshot
    assert after is not before
    assert posted(after, ALICE) == ("0.00", "1.00")


def test_empty_batch_changes_nothing() -> None:
    before = opening_ledger()

    after, outcomes = apply_postings(before, [])

    assert after == before
    assert outcomes == []


# Flags


def test_wallet_refuses_an_overdraft_but_a_later_smaller_purchase_posts() -> None:
    """Alice holds 10.00. She tries to spend 12.00, then 8.00, in the same batch.

    Before:            debits   credits
        alice            0.00     10.00    flagged debits_must_not_exceed_credits

        1. Dr alice 12.00   Cr merchant 12.00   -> insufficient_funds
        2. Dr alice  8.00   Cr merchant  8.00   -> posted

    After:
        alice            8.00     10.00    balance 2.00
        merchant         0.00      8.00
    """
    before = opening_ledger(balance(ALICE, credits_minor=1000, flags=WALLET))
    batch = queue(
        [dr(ALICE, "12.00"), cr(MERCHANT, "12.00")],
        [dr(ALICE, "8.00"), cr(MERCHANT, "8.00")],
    )

    after, outcomes = apply_postings(before, batch)

    assert codes(outcomes) == ["insufficient_funds", "posted"]
    assert [o.request_id for o in outcomes] == [1, 2]
    assert outcomes[0].detail is not None
    assert str(ALICE) in outcomes[0].detail
    assert posted(after, ALICE) == ("8.00", "10.00")
    assert posted(after, MERCHANT) == ("0.00", "8.00")


def test_wallet_may_be_spent_to_exactly_zero_but_not_one_cent_more() -> None:
    """Alice holds 10.00: spending 10.00 posts, the next 0.01 is refused."""
    before = opening_ledger(balance(ALICE, credits_minor=1000, flags=WALLET))
    batch = queue(
        [dr(ALICE, "10.00"), cr(MERCHANT, "10.00")],
        [dr(ALICE, "0.01"), cr(MERCHANT, "0.01")],
    )

    after, outcomes = apply_postings(before, batch)

    assert codes(outcomes) == ["posted", "insufficient_funds"]
    assert posted(after, ALICE) == ("10.00", "10.00")


def test_a_refused_purchase_leaves_room_that_a_top_up_later_in_the_batch_fills() -> None:
    """The outcome of a posting depends only on the postings accepted before it.

    In acceptance order:
        1. Dr alice 5.00   Cr merchant 5.00   -> insufficient_funds (alice is empty)
        2. Dr cash  5.00   Cr alice    5.00   -> posted (top-up)
        3. Dr alice 5.00   Cr merchant 5.00   -> posted
    """
    purchase = [dr(ALICE, "5.00"), cr(MERCHANT, "5.00")]
    batch = queue(purchase, [dr(CASH, "5.00"), cr(ALICE, "5.00")], purchase)

    after, outcomes = apply_postings(opening_ledger(), batch)

    assert codes(outcomes) == ["insufficient_funds", "posted", "posted"]
    assert posted(after, ALICE) == ("5.00", "5.00")
    assert posted(after, MERCHANT) == ("0.00", "5.00")


def test_receivable_refuses_a_settlement_larger_than_what_is_owed() -> None:
    """The card scheme owes 20.00; a settlement of 25.00 would credit it past its debits.

    Before:            debits   credits
        receivable      20.00      0.00    flagged credits_must_not_exceed_debits

        1. Dr cash 25.00   Cr receivable 25.00   -> exceeds_debits
        2. Dr cash 20.00   Cr receivable 20.00   -> posted

    After:
        receivable      20.00     20.00
        cash            20.00      0.00
    """
    before = opening_ledger(balance(RECEIVABLE, debits_minor=2000, flags=OWED))
    batch = queue(
        [dr(CASH, "25.00"), cr(RECEIVABLE, "25.00")],
        [dr(CASH, "20.00"), cr(RECEIVABLE, "20.00")],
    )

    after, outcomes = apply_postings(before, batch)

    assert codes(outcomes) == ["exceeds_debits", "posted"]
    assert posted(after, RECEIVABLE) == ("20.00", "20.00")
    assert posted(after, CASH) == ("20.00", "0.00")


def test_unflagged_accounts_may_go_either_way() -> None:
    """Cash and the merchant carry no flags, so any balance is allowed on them."""
    after, outcomes = apply_postings(
        opening_ledger(), queue([dr(MERCHANT, "1000.00"), cr(CASH, "1000.00")])
    )

    assert codes(outcomes) == ["posted"]
    assert posted(after, MERCHANT) == ("1000.00", "0.00")
    assert posted(after, CASH) == ("0.00", "1000.00")


# Refusals on the accounts themselves


def test_posting_to_an_account_that_was_never_opened_is_refused() -> None:
    after, outcomes = apply_postings(
        opening_ledger(), queue([dr(CASH, "5.00"), cr(NOWHERE, "5.00")])
    )

    assert codes(outcomes) == ["account_not_found"]
    assert outcomes[0].detail is not None
    assert str(NOWHERE) in outcomes[0].detail
    assert NOWHERE not in after
    assert after == opening_ledger()


def test_another_ledgers_account_is_refused_as_if_it_had_never_been_opened() -> None:
    """The bakery's account exists, but in another ledger. The coffee
    shop's postings that name it are refused word for word as postings naming an account
    that was never opened, whichever side it is on: nothing tells that it exists.

        1. Dr cash      5.00   Cr elsewhere 5.00   -> account_not_found
        2. Dr elsewhere 5.00   Cr cash      5.00   -> account_not_found
        3. Dr cash      5.00   Cr nowhere   5.00   -> account_not_found (never opened)
    """
    before = opening_ledger()

    after, outcomes = apply_postings(
        before,
        queue(
            [dr(CASH, "5.00"), cr(ELSEWHERE, "5.00")],
            [dr(ELSEWHERE, "5.00"), cr(CASH, "5.00")],
            [dr(CASH, "5.00"), cr(NOWHERE, "5.00")],
        ),
    )

    assert codes(outcomes) == ["account_not_found"] * 3
    assert outcomes[0].detail == f"account {ELSEWHERE} does not exist"
    assert outcomes[1].detail == outcomes[0].detail
    assert outcomes[2].detail == f"account {NOWHERE} does not exist"
    assert after == before


def test_the_other_ledger_posts_to_its_own_account() -> None:
    """The same account, named by a posting sent in its own ledger, is found and moved."""
    bakery = [
        QueuedPosting(
            RequestId(1),
            ClientId("bakery"),
            build_posting(
                idempotency_key="b-1",
                currency="USD",
                entries=[dr(ELSEWHERE, "5.00"), cr(NOWHERE_IN_BAKERY, "5.00")],
            ),
            ledger="bakery",
        )
    ]
    before = opening_ledger(balance(NOWHERE_IN_BAKERY, ledger="bakery"))

    after, outcomes = apply_postings(before, bakery)

    assert codes(outcomes) == ["posted"]
    assert posted(after, ELSEWHERE) == ("5.00", "0.00")
    assert posted(after, NOWHERE_IN_BAKERY) == ("0.00", "5.00")
    assert after[ELSEWHERE].ledger == "bakery"


def test_posting_to_a_closed_wallet_is_refused() -> None:
    before = opening_ledger(
        balance(CLOSED, credits_minor=500, flags=WALLET, status=AccountStatus.INACTIVE)
    )

    after, outcomes = apply_postings(before, queue([dr(CLOSED, "5.00"), cr(CASH, "5.00")]))

    assert codes(outcomes) == ["account_inactive"]
    assert after == before


def test_yen_cannot_be_posted_to_a_dollar_account() -> None:
    """Dr yen_cash 500 JPY, Cr alice 500 JPY: alice holds USD -> currency_mismatch."""
    after, outcomes = apply_postings(
        opening_ledger(), queue([dr(YEN_CASH, "500"), cr(ALICE, "500")], currency="JPY")
    )

    assert codes(outcomes) == ["currency_mismatch"]
    assert outcomes[0].detail is not None
    assert "USD" in outcomes[0].detail
    assert after == opening_ledger()


def test_a_posting_in_yen_between_yen_accounts_posts() -> None:
    yen_wallet = account_id(70)
    before = opening_ledger(balance(yen_wallet, currency="JPY", flags=WALLET))

    after, outcomes = apply_postings(
        before, queue([dr(YEN_CASH, "500"), cr(yen_wallet, "500")], currency="JPY")
    )

    assert codes(outcomes) == ["posted"]
    assert posted(after, yen_wallet) == ("0", "500")


def test_a_total_that_would_pass_38_digits_is_refused_and_one_that_reaches_it_posts() -> None:
    """Cash has posted debits 1.00 below the largest storable total, 38 nines of cents.

    No history within the largest amount of one entry gets there (the architecture's
    decision "No account can be frozen"); the engine still refuses to pass it.

    In acceptance order:
        1. Dr cash 1.01   Cr merchant 1.01   -> balance_overflow
        2. Dr cash 1.00   Cr merchant 1.00   -> posted; cash debits are exactly TOTAL_MAX
        3. Dr cash 0.01   Cr merchant 0.01   -> balance_overflow
    """
    before = opening_ledger(balance(CASH, debits_minor=TOTAL_MAX - 100))
    batch = queue(
        [dr(CASH, "1.01"), cr(MERCHANT, "1.01")],
        [dr(CASH, "1.00"), cr(MERCHANT, "1.00")],
        [dr(CASH, "0.01"), cr(MERCHANT, "0.01")],
    )

    after, outcomes = apply_postings(before, batch)

    assert codes(outcomes) == ["balance_overflow", "posted", "balance_overflow"]
    assert after[CASH].debits_posted == TOTAL_MAX
    assert posted(after, MERCHANT) == ("0.00", "1.00")


def test_credit_totals_overflow_too() -> None:
    before = opening_ledger(balance(MERCHANT, credits_minor=TOTAL_MAX))

    after, outcomes = apply_postings(before, queue([dr(CASH, "0.01"), cr(MERCHANT, "0.01")]))

    assert codes(outcomes) == ["balance_overflow"]
    assert after == before


# Precedence: the first refusal in engine.py's documented order is reported


def test_accounts_must_be_different_outranks_invalid_amount() -> None:
    """Alice on both sides of an entry above the largest amount of one entry."""
    too_large = "10000000000000.01"
    _, outcomes = apply_postings(
        opening_ledger(), stored([dr(ALICE, too_large), cr(ALICE, too_large)])
    )

    assert codes(outcomes) == ["accounts_must_be_different"]


def test_invalid_amount_outranks_missing_account() -> None:
    too_large = "10000000000000.01"
    _, outcomes = apply_postings(
        opening_ledger(), stored([dr(CASH, too_large), cr(NOWHERE, too_large)])
    )

    assert codes(outcomes) == ["invalid_amount"]


def test_missing_account_outranks_currency_mismatch() -> None:
    """Entry 1 names a yen account in a USD posting; entry 2 an account never opened."""
    _, outcomes = apply_postings(
        opening_ledger(), queue([dr(YEN_CASH, "5.00"), cr(NOWHERE, "5.00")])
    )

    assert codes(outcomes) == ["account_not_found"]


def test_missing_account_outranks_inactive_account() -> None:
    _, outcomes = apply_postings(opening_ledger(), queue([dr(CLOSED, "5.00"), cr(NOWHERE, "5.00")]))

    assert codes(outcomes) == ["account_not_found"]


def test_inactive_account_outranks_currency_mismatch() -> None:
    _, outcomes = apply_postings(
        opening_ledger(), queue([dr(YEN_CASH, "5.00"), cr(CLOSED, "5.00")])
    )

    assert codes(outcomes) == ["account_inactive"]


def test_currency_mismatch_outranks_insufficient_funds() -> None:
    """Alice is empty and would be overdrawn, but the yen account is reported first."""
    _, outcomes = apply_postings(opening_ledger(), queue([dr(ALICE, "5.00"), cr(YEN_CASH, "5.00")]))

    assert codes(outcomes) == ["currency_mismatch"]


def test_balance_overflow_outranks_insufficient_funds() -> None:
    """Alice is empty (overdraft) and the merchant's credits are at the limit (overflow)."""
    before = opening_ledger(balance(MERCHANT, credits_minor=TOTAL_MAX))

    _, outcomes = apply_postings(before, queue([dr(ALICE, "5.00"), cr(MERCHANT, "5.00")]))

    assert codes(outcomes) == ["balance_overflow"]


def test_insufficient_funds_outranks_exceeds_debits() -> None:
    """Alice is empty and nothing is owed on the receivable: both flags would break."""
    _, outcomes = apply_postings(
        opening_ledger(), queue([dr(ALICE, "5.00"), cr(RECEIVABLE, "5.00")])
    )

    assert codes(outcomes) == ["insufficient_funds"]


def test_exceeds_debits_when_it_is_the_only_refusal() -> None:
    _, outcomes = apply_postings(
        opening_ledger(), queue([dr(CASH, "5.00"), cr(RECEIVABLE, "5.00")])
    )

    assert codes(outcomes) == ["exceeds_debits"]


# One account on several entries of one posting


def test_entries_on_the_same_account_are_summed_before_flags_are_checked() -> None:
    """Alice holds 40.00. One posting debits her 30.00 and 20.00.

    Each entry alone fits in 40.00, but together they take 50.00: refused as a whole.
    """
    before = opening_ledger(balance(ALICE, credits_minor=4000, flags=WALLET))
    batch = queue(
        [dr(ALICE, "30.00"), dr(ALICE, "20.00"), cr(MERCHANT, "50.00")],
        [dr(ALICE, "30.00"), dr(ALICE, "10.00"), cr(MERCHANT, "40.00")],
    )

    after, outcomes = apply_postings(before, batch)

    assert codes(outcomes) == ["insufficient_funds", "posted"]
    assert posted(after, ALICE) == ("40.00", "40.00")
    assert posted(after, MERCHANT) == ("0.00", "40.00")


def test_a_posting_that_debits_and_credits_one_account_is_refused() -> None:
    """Dr alice 7.00, Cr alice 7.00 moves no money. Intake refuses it; a posting stored
    before that rule (or by another way in) is refused again here and changes nothing.

    Before totals were wide, such a posting of 2**63 - 1 cents took both of an account's
    totals to the BIGINT limit, and the account refused every later posting.
    """
    before = opening_ledger()

    after, outcomes = apply_postings(before, stored([dr(ALICE, "7.00"), cr(ALICE, "7.00")]))

    assert [(o.code, o.detail) for o in outcomes] == [
        (
            "accounts_must_be_different",
            f"account {ALICE} is both debited and credited; "
            "a transaction moves money between different accounts",
        )
    ]
    assert after == before


def test_one_account_on_both_sides_refuses_the_whole_posting() -> None:
    """Dr bob 3.00, Cr bob 3.00, Dr cash 2.00, Cr merchant 2.00: the cash to merchant pair
    would be fine, but the posting is refused as a whole."""
    before = opening_ledger()

    after, outcomes = apply_postings(
        before,
        stored([dr(BOB, "3.00"), cr(BOB, "3.00"), dr(CASH, "2.00"), cr(MERCHANT, "2.00")]),
    )

    assert codes(outcomes) == ["accounts_must_be_different"]
    assert after == before


# Refused postings change nothing


def test_a_batch_of_refusals_leaves_every_balance_identical() -> None:
    """Every kind of refusal in one batch: the ledger after equals the ledger before."""
    before = opening_ledger(
        balance(ALICE, debits_minor=100, credits_minor=1000, flags=WALLET),
        balance(RECEIVABLE, debits_minor=500, credits_minor=100, flags=OWED),
        balance(FEES, credits_minor=TOTAL_MAX - 1),
    )
    batch = stored(
        [dr(CASH, "1.00"), cr(CASH, "1.00")],
        [dr(CASH, "10000000000000.01"), cr(MERCHANT, "10000000000000.01")],
        [dr(CASH, "1.00"), cr(NOWHERE, "1.00")],
        [dr(CASH, "1.00"), cr(CLOSED, "1.00")],
        [dr(CASH, "1.00"), cr(YEN_CASH, "1.00")],
        [dr(CASH, "1.00"), cr(FEES, "1.00")],
        [dr(ALICE, "9.01"), cr(MERCHANT, "9.01")],
        [dr(CASH, "4.01"), cr(RECEIVABLE, "4.01")],
    )

    after, outcomes = apply_postings(before, batch)

    assert codes(outcomes) == [
        "accounts_must_be_different",
        "invalid_amount",
        "account_not_found",
        "account_inactive",
        "currency_mismatch",
        "balance_overflow",
        "insufficient_funds",
        "exceeds_debits",
    ]
    assert all(o.detail for o in outcomes)
    assert after == before


def test_refusals_between_accepted_postings_do_not_disturb_them() -> None:
    """Two top-ups with a refused overdraft between them: only the top-ups count."""
    before = opening_ledger()
    batch = queue(
        [dr(CASH, "3.00"), cr(BOB, "3.00")],
        [dr(BOB, "9.00"), cr(MERCHANT, "9.00")],
        [dr(CASH, "4.00"), cr(BOB, "4.00")],
    )

    after, outcomes = apply_postings(before, batch)

    assert codes(outcomes) == ["posted", "insufficient_funds", "posted"]
    assert posted(after, BOB) == ("0.00", "7.00")
    assert posted(after, CASH) == ("7.00", "0.00")
    assert after[MERCHANT] == before[MERCHANT]
