"""Opening an account: a storable name, an ISO 4217 currency with a minor unit, and flags
that leave the account able to move.

An account flagged both debits_must_not_exceed_credits and credits_must_not_exceed_debits
could only ever hold debits equal to credits: the only posting it could take debits and
credits it the same amount, which changes nothing. `check_account` refuses that pair before
the row exists.
"""

from __future__ import annotations

import pytest

from ledger_core.errors import InvalidFlags, InvalidText, UnsupportedCurrency
from ledger_core.model import AccountFlag
from ledger_core.rules import check_account

WALLET = AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS
OWED = AccountFlag.CREDITS_MUST_NOT_EXCEED_DEBITS


@pytest.mark.parametrize(
    ("name", "currency", "flags"),
    [
        pytest.param("Cash at bank", "USD", AccountFlag.NONE, id="cash-without-flags"),
        pytest.param("Alice's wallet", "EUR", WALLET, id="wallet-may-not-go-overdrawn"),
        pytest.param("Card scheme receivable", "USD", OWED, id="receivable-may-not-be-overpaid"),
        pytest.param("\u73fe\u91d1", "JPY", AccountFlag.NONE, id="yen-cash-named-in-japanese"),
        pytest.param("Dinar float", "BHD", WALLET, id="three-decimal-currency"),
    ],
)
def test_a_well_formed_account_is_accepted(name: str, currency: str, flags: AccountFlag) -> None:
    check_account(name=name, currency=currency, flags=flags)  # Accepted: nothing is raised.


def test_an_account_that_could_never_move_is_refused() -> None:
    with pytest.raises(InvalidFlags) as raised:
        check_account(name="Frozen", currency="USD", flags=WALLET | OWED)

    assert raised.value.code == "invalid_flags"
    assert raised.value.detail == (
        "debits_must_not_exceed_credits and credits_must_not_exceed_debits exclude each other"
    )


@pytest.mark.parametrize(
    "currency",
    [
        pytest.param("usd", id="lower-case"),
        pytest.param("XAU", id="gold-has-no-minor-unit"),
        pytest.param("ZZZ", id="not-assigned"),
    ],
)
def test_an_account_in_a_currency_without_minor_units_is_refused(currency: str) -> None:
    with pytest.raises(UnsupportedCurrency) as raised:
        check_account(name="Vault", currency=currency, flags=AccountFlag.NONE)

    assert raised.value.code == "unsupported_currency"


@pytest.mark.parametrize(
    ("name", "detail"),
    [
        pytest.param("Petty\x00cash", "name must not contain NUL characters", id="nul"),
        pytest.param("Petty \ud800cash", "name is not valid Unicode text", id="lone-surrogate"),
    ],
)
def test_an_account_name_that_postgresql_cannot_store_is_refused(name: str, detail: str) -> None:
    with pytest.raises(InvalidText) as raised:
        check_account(name=name, currency="USD", flags=AccountFlag.NONE)

    assert raised.value.code == "invalid_text"
    assert raised.value.detail == detail


def test_the_name_is_checked_before_the_currency_and_the_currency_before_the_flags() -> None:
    with pytest.raises(InvalidText):
        check_account(name="\x00", currency="XAU", flags=WALLET | OWED)
    with pytest.raises(UnsupportedCurrency):
        check_account(name="Vault", currency="XAU", flags=WALLET | OWED)
