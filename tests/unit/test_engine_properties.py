"""Properties of `apply_postings` that must hold for every batch.

The pool is small on purpose so that postings collide: dollar and yen accounts, wallets
flagged debits_must_not_exceed_credits, accounts flagged credits_must_not_exceed_debits (and
one with both flags), an inactive account, one whose credits sit just below the largest
storable total, an account of another ledger (tenant), and ids that are absent from the
balances map. Postings are sent in the ledger `LEDGER`. Postings are balanced by
construction, as `build_posting` guarantees, but may name any account of the pool in either
currency, and now and then one account on both sides, which intake refuses and the engine
refuses again.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger_core.engine import apply_postings
from ledger_core.errors import REFUSALS
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
from ledger_core.money import TOTAL_MAX

Balances = dict[AccountId, Balance]

DMNEC = AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS
CMNED = AccountFlag.CREDITS_MUST_NOT_EXCEED_DEBITS
ACTIVE = AccountStatus.ACTIVE
INACTIVE = AccountStatus.INACTIVE
LEDGER = "shop"


@dataclass(frozen=True)
class PoolAccount:
    account_id: AccountId
    currency: str
    flags: AccountFlag = AccountFlag.NONE
    status: AccountStatus = ACTIVE
    near_limit: bool = False
    ledger: str = LEDGER


def _id(number: int) -> AccountId:
    return AccountId(uuid.UUID(int=number, version=4))


POOL = (
    PoolAccount(_id(1), "USD"),
    PoolAccount(_id(2), "USD"),
    PoolAccount(_id(3), "USD", DMNEC),
    PoolAccount(_id(4), "USD", CMNED),
    PoolAccount(_id(5), "USD", DMNEC | CMNED),
    PoolAccount(_id(6), "USD", DMNEC, INACTIVE),
    PoolAccount(_id(7), "USD", near_limit=True),
    PoolAccount(_id(11), "JPY"),
    PoolAccount(_id(12), "JPY", DMNEC),
    PoolAccount(_id(13), "JPY", CMNED),
    PoolAccount(_id(20), "USD", ledger="another-shop"),
)
MISSING_IDS = (_id(90), _id(91))
ALL_IDS = tuple(a.account_id for a in POOL) + MISSING_IDS


@st.composite
def opening_balances(draw: st.DrawFn) -> Balances:
    """Balances for the pool (missing ids left out) that satisfy every account's flags."""
    balances: Balances = {}
    for account in POOL:
        debits = draw(st.integers(0, 300))
        credits = draw(st.integers(0, 300))
        if DMNEC in account.flags:
            credits = debits + draw(st.integers(0, 12))
        if CMNED in account.flags:
            debits = credits if DMNEC in account.flags else credits + draw(st.integers(0, 12))
        if account.near_limit:
            credits = TOTAL_MAX - draw(st.integers(0, 150))
        balances[account.account_id] = Balance(
            account.account_id,
            account.currency,
            account.status,
            account.flags,
            debits,
            credits,
            account.ledger,
        )
    return balances


# Three in four entries name an active account of the posting's currency and ledger; the rest
# name any id of the pool, the inactive, other ledger's and missing ones included.
ACTIVE_IDS_BY_CURRENCY = {
    currency: tuple(
        a.account_id
        for a in POOL
        if a.currency == currency and a.status is ACTIVE and a.ledger == LEDGER
    )
    for currency in ("USD", "JPY")
}
ENTRY_ACCOUNT_CHOICES = {
    currency: ids * (3 * len(ALL_IDS) // len(ids)) + ALL_IDS
    for currency, ids in ACTIVE_IDS_BY_CURRENCY.items()
}


@st.composite
def postings(draw: st.DrawFn, number: int) -> QueuedPosting:
    """A balanced posting of 2 to 6 entries with small amounts, as build_posting returns.

    Entries are drawn freely; one last entry on the short side balances them when needed, so
    there are always at least two entries and at least one debit. One in eight may keep an
    account on both sides.
    """
    currency = draw(st.sampled_from(("USD", "JPY")))
    accounts = st.sampled_from(ENTRY_ACCOUNT_CHOICES[currency])
    drawn = draw(
        st.lists(
            st.builds(Entry, accounts, st.sampled_from(Direction), st.integers(1, 12)),
            min_size=1,
            max_size=5,
        )
    )
    net = sum(e.amount_minor if e.direction is Direction.DEBIT else -e.amount_minor for e in drawn)
    if net != 0:
        side = Direction.CREDIT if net > 0 else Direction.DEBIT
        drawn.append(Entry(draw(accounts), side, abs(net)))
    if draw(st.integers(0, 7)):
        # Seven in eight postings keep each account to one side, as intake makes them:
        # a credit to a debited account goes to another account instead.
        debited = {e.account_id for e in drawn if e.direction is Direction.DEBIT}
        others = st.sampled_from([a for a in ENTRY_ACCOUNT_CHOICES[currency] if a not in debited])
        drawn = [
            Entry(draw(others), e.direction, e.amount_minor)
            if e.direction is Direction.CREDIT and e.account_id in debited
            else e
            for e in drawn
        ]
    posting = Posting(idempotency_key=f"k-{number}", currency=currency, entries=tuple(drawn))
    return QueuedPosting(RequestId(number), ClientId("client"), posting, ledger=LEDGER)


@st.composite
def batches(draw: st.DrawFn, max_size: int = 12) -> list[QueuedPosting]:
    size = draw(st.integers(0, max_size))
    return [draw(postings(number)) for number in range(1, size + 1)]


def net_by_currency(balances: Mapping[AccountId, Balance]) -> Counter[str]:
    """Per currency, the sum over accounts of debits minus credits."""
    net: Counter[str] = Counter()
    for b in balances.values():
        net[b.currency] += b.debits_posted - b.credits_posted
    return net


def flags_hold(b: Balance) -> bool:
    if DMNEC in b.flags and b.debits_posted > b.credits_posted:
        return False
    return not (CMNED in b.flags and b.credits_posted > b.debits_posted)


def accepted(batch: Sequence[QueuedPosting], outcomes: Sequence[Outcome]) -> list[QueuedPosting]:
    return [queued for queued, outcome in zip(batch, outcomes, strict=True) if outcome.posted]


PROPERTY_SETTINGS = settings(max_examples=150, deadline=None)


@PROPERTY_SETTINGS
@given(before=opening_balances(), batch=batches())
def test_money_is_conserved_and_balances_move_by_accepted_entries_only(
    before: Balances, batch: list[QueuedPosting]
) -> None:
    after, outcomes = apply_postings(before, batch)

    assert [o.request_id for o in outcomes] == [q.request_id for q in batch]
    assert net_by_currency(after) == net_by_currency(before)

    expected = {account: [b.debits_posted, b.credits_posted] for account, b in before.items()}
    accepted_volume: Counter[str] = Counter()
    for queued in accepted(batch, outcomes):
        for entry in queued.posting.entries:
            expected[entry.account_id][0 if entry.direction is Direction.DEBIT else 1] += (
                entry.amount_minor
            )
            if entry.direction is Direction.DEBIT:
                accepted_volume[queued.posting.currency] += entry.amount_minor
    assert after.keys() == before.keys()
    # What the engine moved, read from the balances it returned: per currency, as many
    # debits as credits, and exactly the accepted postings' volume.
    for currency in ("USD", "JPY"):
        in_currency = [account for account, b in after.items() if b.currency == currency]
        debited = sum(after[a].debits_posted - before[a].debits_posted for a in in_currency)
        credited = sum(after[a].credits_posted - before[a].credits_posted for a in in_currency)
        assert debited == credited == accepted_volume[currency]
    for account, b in after.items():
        assert [b.debits_posted, b.credits_posted] == expected[account]
        assert (b.currency, b.status, b.flags) == (
            before[account].currency,
            before[account].status,
            before[account].flags,
        )


@PROPERTY_SETTINGS
@given(before=opening_balances(), batch=batches())
def test_refused_postings_change_nothing(before: Balances, batch: list[QueuedPosting]) -> None:
    after, outcomes = apply_postings(before, batch)
    only_accepted = accepted(batch, outcomes)

    after_without_refused, outcomes_without_refused = apply_postings(before, only_accepted)

    assert after_without_refused == after
    assert all(o.posted for o in outcomes_without_refused)
    assert [o.request_id for o in outcomes_without_refused] == [q.request_id for q in only_accepted]
    for outcome in outcomes:
        if outcome.posted:
            assert outcome.code is None
        else:
            assert outcome.code in REFUSALS
            assert outcome.detail


@PROPERTY_SETTINGS
@given(before=opening_balances(), batch=batches())
def test_flags_and_account_rules_hold_after_any_batch(
    before: Balances, batch: list[QueuedPosting]
) -> None:
    after, outcomes = apply_postings(before, batch)

    for b in after.values():
        assert flags_hold(b), b
        assert 0 <= b.debits_posted <= TOTAL_MAX
        assert 0 <= b.credits_posted <= TOTAL_MAX
    for queued in accepted(batch, outcomes):
        for entry in queued.posting.entries:
            assert entry.account_id in before
            assert before[entry.account_id].ledger == queued.ledger
            assert before[entry.account_id].status is ACTIVE
            assert before[entry.account_id].currency == queued.posting.currency


@settings(max_examples=100, deadline=None)
@given(before=opening_balances(), batch=batches(max_size=16), data=st.data())
def test_outcome_does_not_depend_on_how_a_sequence_is_cut_into_batches(
    before: Balances, batch: list[QueuedPosting], data: st.DataObject
) -> None:
    whole_after, whole_outcomes = apply_postings(before, batch)
    cuts = sorted(data.draw(st.sets(st.integers(1, max(len(batch) - 1, 1)), max_size=6)))
    chunks = [batch[low:high] for low, high in zip([0, *cuts], [*cuts, len(batch)], strict=True)]

    current: Mapping[AccountId, Balance] = before
    chunked_outcomes: list[Outcome] = []
    for chunk in chunks:
        current, outcomes = apply_postings(current, chunk)
        chunked_outcomes.extend(outcomes)

    assert chunked_outcomes == whole_outcomes
    assert current == whole_after


@settings(max_examples=100, deadline=None)
@given(
    flag=st.sampled_from((DMNEC, CMNED)),
    room=st.integers(0, 1000),
    overshoot=st.integers(-3, 3),
    base=st.integers(0, 1000),
)
def test_a_flagged_account_takes_exactly_its_room_and_not_one_unit_more(
    flag: AccountFlag, room: int, overshoot: int, base: int
) -> None:
    """A wallet holding `room` can be debited `room` but not `room + 1`; likewise mirrored."""
    amount = max(1, room + overshoot)
    flagged, other = _id(1), _id(2)
    larger, smaller = base + room, base
    before = {
        flagged: Balance(
            flagged,
            "USD",
            ACTIVE,
            flag,
            smaller if flag is DMNEC else larger,
            larger if flag is DMNEC else smaller,
            LEDGER,
        ),
        other: Balance(other, "USD", ACTIVE, AccountFlag.NONE, 0, 0, LEDGER),
    }
    toward_the_limit = Direction.DEBIT if flag is DMNEC else Direction.CREDIT
    away = Direction.CREDIT if flag is DMNEC else Direction.DEBIT
    posting = Posting(
        idempotency_key="k",
        currency="USD",
        entries=(Entry(flagged, toward_the_limit, amount), Entry(other, away, amount)),
    )

    queued = QueuedPosting(RequestId(1), ClientId("c"), posting, ledger=LEDGER)
    after, [outcome] = apply_postings(before, [queued])

    assert outcome.posted is (amount <= room)
    if outcome.posted:
        moved = after[flagged].debits_posted + after[flagged].credits_posted
        assert moved == base + larger + amount
    else:
        assert outcome.code == ("insufficient_funds" if flag is DMNEC else "exceeds_debits")
        assert after == before


PLAIN = {
    account.account_id: account.currency
    for account in POOL
    if account.flags is AccountFlag.NONE
    and account.status is ACTIVE
    and not account.near_limit
    and account.ledger == LEDGER
}


@PROPERTY_SETTINGS
@given(before=opening_balances(), batch=batches())
def test_a_posting_with_nothing_to_refuse_it_for_is_posted(
    before: Balances, batch: list[QueuedPosting]
) -> None:
    """Refusals have causes: a posting whose accounts are different on each side, all exist
    in its ledger, are active, hold its currency, carry no flag and sit far from the largest
    total is posted, whatever else the batch holds."""
    _, outcomes = apply_postings(before, batch)
    for queued, outcome in zip(batch, outcomes, strict=True):
        entries = queued.posting.entries
        sides = [{e.account_id for e in entries if e.direction is d} for d in Direction]
        if not sides[0] & sides[1] and all(
            PLAIN.get(e.account_id) == queued.posting.currency for e in entries
        ):
            assert outcome.posted, (queued, outcome)


FOREIGN = {account.account_id for account in POOL if account.ledger != LEDGER}


@PROPERTY_SETTINGS
@given(before=opening_balances(), batch=batches())
def test_another_ledgers_account_is_refused_exactly_as_a_missing_one(
    before: Balances, batch: list[QueuedPosting]
) -> None:
    """Ledgers are tenants: every outcome, code and detail included, is the same whether
    another ledger's account exists or not, and that account is never moved."""
    after, outcomes = apply_postings(before, batch)
    without = {account: b for account, b in before.items() if account not in FOREIGN}

    after_without, outcomes_without = apply_postings(without, batch)

    assert outcomes == outcomes_without
    assert {account: after[account] for account in FOREIGN} == {
        account: before[account] for account in FOREIGN
    }
    assert {a: b for a, b in after.items() if a not in FOREIGN} == after_without
