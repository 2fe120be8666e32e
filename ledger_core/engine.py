"""The posting engine: pure functions over locked balances.

Given the balances of every account a batch touches (read under row locks) and the batch's
postings in acceptance order, `apply_postings` returns one outcome per posting and the new
balances. A refused posting changes nothing; an accepted one moves each account's posted
totals by exactly its entries. The outcome of a posting depends only on the balances left by
the postings before it, so cutting a sequence into batches differently gives the same result.

Refusal codes in order of precedence (the first that applies is reported):
  1. accounts_must_be_different  an account is both debited and credited
  2. invalid_amount              an entry is above the largest amount of one entry
  3. account_not_found           an entry names an account that does not exist, or one of
                                 another ledger (tenant): the two are indistinguishable
  4. account_inactive            an entry names an inactive account
  5. currency_mismatch           an account's currency differs from the posting's
  6. balance_overflow            a posted total would pass 38 digits (`money.TOTAL_MAX`)
  7. insufficient_funds          a debits_must_not_exceed_credits account would have
                                 debits > credits
  8. exceeds_debits              a credits_must_not_exceed_debits account would have
                                 credits > debits
Codes 1 and 2 are stateless rules that intake (`rules.build_posting`) refuses with 422 before
storing anything; the engine holds them a second time, for postings accepted by an older
version or under a larger `entry_amount_max_minor`. Within the per-entry maximum no history
reaches code 6 (docs/ARCHITECTURE.md, "No account can be frozen").

Ledgers are tenants: a posting may name only accounts of the ledger it was sent in
(`QueuedPosting.ledger`, the API key's). An account of another ledger is refused exactly as a
missing one, same code and detail, so a refusal never tells that it exists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ledger_core.errors import (
    AccountInactive,
    AccountNotFoundForPosting,
    BalanceOverflow,
    CurrencyMismatch,
    ExceedsDebits,
    InputError,
    InsufficientFunds,
    LedgerError,
    Refusal,
)
from ledger_core.model import (
    AccountFlag,
    AccountId,
    AccountStatus,
    Balance,
    Direction,
    Outcome,
    Posting,
    QueuedPosting,
)
from ledger_core.money import TOTAL_MAX
from ledger_core.rules import ENTRY_AMOUNT_MAX_MINOR, check_accounts_differ, check_amounts


def account_deltas(posting: Posting) -> dict[AccountId, tuple[int, int]]:
    """Per account, the (debits, credits) a posting adds, summed over its entries."""
    deltas: dict[AccountId, tuple[int, int]] = {}
    for entry in posting.entries:
        debits, credits = deltas.get(entry.account_id, (0, 0))
        if entry.direction is Direction.DEBIT:
            debits += entry.amount_minor
        else:
            credits += entry.amount_minor
        deltas[entry.account_id] = (debits, credits)
    return deltas


def check_entries(posting: Posting, amount_max_minor: int) -> LedgerError | None:
    """Refusals 1-2: no account on both sides, no entry above `amount_max_minor`."""
    try:
        check_accounts_differ(posting.entries)
        check_amounts(posting.entries, posting.currency, amount_max_minor)
    except InputError as error:
        return error
    return None


def check_accounts(
    balances: Mapping[AccountId, Balance], posting: Posting, ledger: str
) -> Refusal | None:
    """Refusals 3-5: every account exists in `ledger`, is active and holds the posting's
    currency. An account of another ledger gets the refusal of a missing one, word for word."""
    for entry in posting.entries:
        found = balances.get(entry.account_id)
        if found is None or found.ledger != ledger:
            return AccountNotFoundForPosting(f"account {entry.account_id} does not exist")
    for entry in posting.entries:
        if balances[entry.account_id].status is not AccountStatus.ACTIVE:
            return AccountInactive(f"account {entry.account_id} is inactive")
    for entry in posting.entries:
        account_currency = balances[entry.account_id].currency
        if account_currency != posting.currency:
            return CurrencyMismatch(
                f"account {entry.account_id} holds {account_currency}, "
                f"the transaction is in {posting.currency}"
            )
    return None


def check_totals(after: Sequence[Balance]) -> Refusal | None:
    """Refusals 6-8 on the balances a posting would leave behind."""
    for balance in after:
        if balance.debits_posted > TOTAL_MAX or balance.credits_posted > TOTAL_MAX:
            return BalanceOverflow(f"account {balance.account_id} would pass the largest amount")
    constrained = [balance for balance in after if balance.flags]
    for balance in constrained:
        if (
            AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS in balance.flags
            and balance.debits_posted > balance.credits_posted
        ):
            return InsufficientFunds(
                f"account {balance.account_id} would have debits greater than credits"
            )
    for balance in constrained:
        if (
            AccountFlag.CREDITS_MUST_NOT_EXCEED_DEBITS in balance.flags
            and balance.credits_posted > balance.debits_posted
        ):
            return ExceedsDebits(
                f"account {balance.account_id} would have credits greater than debits"
            )
    return None


def moved(balance: Balance, debits: int, credits: int) -> Balance:
    """`balance` with `debits` and `credits` added to its posted totals."""
    return Balance(
        account_id=balance.account_id,
        currency=balance.currency,
        status=balance.status,
        flags=balance.flags,
        debits_posted=balance.debits_posted + debits,
        credits_posted=balance.credits_posted + credits,
        ledger=balance.ledger,
    )


def apply_posting(
    balances: Mapping[AccountId, Balance],
    posting: Posting,
    amount_max_minor: int = ENTRY_AMOUNT_MAX_MINOR,
    *,
    ledger: str,
) -> tuple[list[Balance], LedgerError | None]:
    """The balances one posting sent in `ledger` would leave for the accounts it touches,
    or its refusal."""
    refused = check_entries(posting, amount_max_minor)
    if refused is not None:
        return [], refused
    refusal = check_accounts(balances, posting, ledger)
    if refusal is not None:
        return [], refusal
    after = [
        moved(balances[account_id], debits, credits)
        for account_id, (debits, credits) in account_deltas(posting).items()
    ]
    refusal = check_totals(after)
    if refusal is not None:
        return [], refusal
    return after, None


def apply_postings(
    balances: Mapping[AccountId, Balance],
    postings: Sequence[QueuedPosting],
    *,
    amount_max_minor: int = ENTRY_AMOUNT_MAX_MINOR,
) -> tuple[dict[AccountId, Balance], list[Outcome]]:
    """Apply postings in order; return the new balances and one outcome per posting.

    `amount_max_minor` is the deployment's largest amount of one entry."""
    current = dict(balances)
    outcomes: list[Outcome] = []
    for queued in postings:
        after, refusal = apply_posting(
            current, queued.posting, amount_max_minor, ledger=queued.ledger
        )
        if refusal is not None:
            outcomes.append(Outcome(queued.request_id, False, refusal.code, refusal.detail))
            continue
        for balance in after:
            current[balance.account_id] = balance
        outcomes.append(Outcome(queued.request_id, True))
    return current, outcomes
