"""The documented size limits of a posting, pinned at their boundaries.

The limits are module-level constants in `rules.py` and `money.py` (the largest amount of
one entry is also a setting, whose default is the constant), which mutation testing
does not change, so these tests hold them instead: exactly at a limit is accepted, one past
it is refused with the limit's error code and a detail that states the limit. The numbers
are written out rather than read from the constants, because clients rely on them (the
README states the entry limit, each problem detail states its own): changing one must fail
here first.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import pytest
from pydantic import ValidationError

from ledger_core.errors import (
    InvalidAmount,
    InvalidEntries,
    InvalidIdempotencyKey,
    InvalidMetadata,
    LedgerError,
)
from ledger_core.model import AccountId, Direction, Posting
from ledger_core.money import BIGINT_MAX, TOTAL_MAX
from ledger_core.rules import (
    ENTRY_AMOUNT_CEILING_MINOR,
    ENTRY_AMOUNT_MAX_MINOR,
    RawEntry,
    build_posting,
)
from ledger_core.settings import Settings

CASH = AccountId(uuid.UUID("00000000-0000-4000-8000-000000000001"))
WALLET = AccountId(uuid.UUID("00000000-0000-4000-8000-000000000002"))

IDEMPOTENCY_KEY_DETAIL = "idempotency_key must be 1-128 characters of letters, digits and . _ : ~ -"


def payout(
    *,
    idempotency_key: str = "payout-1",
    pairs: int = 1,
    metadata: Mapping[str, object] | None = None,
) -> Posting:
    """Cash pays out to a wallet in `pairs` debit/credit pairs of 0.01 each."""
    entries = [RawEntry(CASH, Direction.DEBIT, "0.01"), RawEntry(WALLET, Direction.CREDIT, "0.01")]
    return build_posting(
        idempotency_key=idempotency_key,
        currency="USD",
        entries=entries * pairs,
        metadata=metadata,
    )


def refusal(error: type[LedgerError], **changes: object) -> LedgerError:
    with pytest.raises(error) as raised:
        payout(**changes)  # type: ignore[arg-type]
    return raised.value


# Entries: 2 to 64.


def test_two_entries_is_the_smallest_transaction() -> None:
    assert len(payout(pairs=1).entries) == 2


def test_one_entry_is_refused() -> None:
    one = [RawEntry(CASH, Direction.DEBIT, "0.01")]

    with pytest.raises(InvalidEntries) as raised:
        build_posting(idempotency_key="k", currency="USD", entries=one)

    assert raised.value.code == "invalid_entries"
    assert raised.value.detail == "a transaction has 2 to 64 entries, not 1"


def test_sixty_four_entries_is_the_largest_transaction() -> None:
    assert len(payout(pairs=32).entries) == 64


def test_sixty_six_entries_are_refused() -> None:
    """An odd count cannot balance in pairs, so 66 is the first balanced count past 64."""
    error = refusal(InvalidEntries, pairs=33)

    assert error.code == "invalid_entries"
    assert error.detail == "a transaction has 2 to 64 entries, not 66"


def test_sixty_five_entries_are_refused_for_their_count_before_their_balance() -> None:
    entries = [RawEntry(CASH, Direction.DEBIT, "0.01")] * 33 + [
        RawEntry(WALLET, Direction.CREDIT, "0.01")
    ] * 32

    with pytest.raises(InvalidEntries) as raised:
        build_posting(idempotency_key="k", currency="USD", entries=entries)

    assert raised.value.detail == "a transaction has 2 to 64 entries, not 65"


# Metadata: at most 16 keys of 1 to 64 characters, values of at most 512 characters.


def test_sixteen_metadata_keys_are_accepted() -> None:
    metadata = {f"key-{i}": "v" for i in range(16)}

    assert payout(metadata=metadata).metadata == metadata


def test_seventeen_metadata_keys_are_refused() -> None:
    error = refusal(InvalidMetadata, metadata={f"key-{i}": "v" for i in range(17)})

    assert error.code == "invalid_metadata"
    assert error.detail == "metadata holds at most 16 keys"


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("k", id="one-character"),
        pytest.param("k" * 64, id="sixty-four-characters"),
        pytest.param("\u00e9" * 64, id="sixty-four-characters-of-two-utf8-bytes"),
    ],
)
def test_metadata_keys_of_one_to_sixty_four_characters_are_accepted(key: str) -> None:
    assert payout(metadata={key: "v"}).metadata == {key: "v"}


@pytest.mark.parametrize(
    "key", [pytest.param("", id="empty"), pytest.param("k" * 65, id="sixty-five-characters")]
)
def test_metadata_keys_outside_one_to_sixty_four_characters_are_refused(key: str) -> None:
    error = refusal(InvalidMetadata, metadata={key: "v"})

    assert error.code == "invalid_metadata"
    assert error.detail == "metadata keys are 1-64 characters"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("v" * 512, id="five-hundred-twelve-characters"),
        pytest.param("\u20ac" * 512, id="five-hundred-twelve-characters-of-three-utf8-bytes"),
    ],
)
def test_metadata_values_of_up_to_five_hundred_twelve_characters_are_accepted(value: str) -> None:
    assert payout(metadata={"note": value}).metadata == {"note": value}


def test_a_metadata_value_of_five_hundred_thirteen_characters_is_refused() -> None:
    error = refusal(InvalidMetadata, metadata={"note": "v" * 513})

    assert error.code == "invalid_metadata"
    assert error.detail == "metadata value of 'note' is longer than 512 characters"


# Idempotency keys: 1 to 128 characters of letters, digits and . _ : ~ -


@pytest.mark.parametrize("key", ["a", "a" * 128, "AZaz09._:~-"])
def test_idempotency_keys_of_one_to_one_hundred_twenty_eight_allowed_characters_are_accepted(
    key: str,
) -> None:
    assert payout(idempotency_key=key).idempotency_key == key


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("", id="empty"),
        pytest.param("a" * 129, id="one-hundred-twenty-nine-characters"),
        pytest.param("order#1", id="character-outside-the-set"),
    ],
)
def test_idempotency_keys_outside_the_limits_are_refused(key: str) -> None:
    error = refusal(InvalidIdempotencyKey, idempotency_key=key)

    assert error.code == "invalid_idempotency_key"
    assert error.detail == IDEMPOTENCY_KEY_DETAIL


# Amounts and totals: a PostgreSQL BIGINT of minor units.


def test_the_largest_storable_amount_is_postgresql_bigint() -> None:
    assert BIGINT_MAX == 9_223_372_036_854_775_807


def test_the_largest_total_has_thirty_eight_digits() -> None:
    assert TOTAL_MAX == 99_999_999_999_999_999_999_999_999_999_999_999_999


# The largest amount of one entry: 10**15 minor units unless a deployment sets another.


def _entry_of(amount: str, currency: str = "USD", **limit: int) -> Posting:
    entries = [RawEntry(CASH, Direction.DEBIT, amount), RawEntry(WALLET, Direction.CREDIT, amount)]
    return build_posting(idempotency_key="k", currency=currency, entries=entries, **limit)


@pytest.mark.parametrize(
    ("currency", "largest", "one_more"),
    [
        ("USD", "10000000000000.00", "10000000000000.01"),
        ("JPY", "1000000000000000", "1000000000000001"),
        ("KWD", "1000000000000.000", "1000000000000.001"),
    ],
)
def test_an_entry_may_be_ten_to_the_fifteen_minor_units_but_not_one_more(
    currency: str, largest: str, one_more: str
) -> None:
    assert ENTRY_AMOUNT_MAX_MINOR == 10**15 < 2**53
    assert _entry_of(largest, currency).entries[0].amount_minor == 10**15

    with pytest.raises(InvalidAmount) as raised:
        _entry_of(one_more, currency)

    assert raised.value.code == "invalid_amount"
    assert raised.value.detail == (
        f"amount {one_more} {currency} is above the largest amount of one entry, "
        f"{largest} {currency}"
    )


def test_the_deployment_may_set_the_largest_amount_up_to_a_sixty_fourth_of_bigint() -> None:
    """64 entries of the ceiling still sum within a BIGINT."""
    assert ENTRY_AMOUNT_CEILING_MINOR == 144_115_188_075_855_871
    assert 64 * ENTRY_AMOUNT_CEILING_MINOR <= BIGINT_MAX < 64 * (ENTRY_AMOUNT_CEILING_MINOR + 1)
    assert Settings.model_fields["entry_amount_max_minor"].default == 10**15
    assert Settings(entry_amount_max_minor=144_115_188_075_855_871).entry_amount_max_minor > 0
    with pytest.raises(ValidationError):
        Settings(entry_amount_max_minor=144_115_188_075_855_872)
    with pytest.raises(ValidationError):
        Settings(entry_amount_max_minor=0)
    ceiling = _entry_of("144115188075855871", "JPY", amount_max_minor=ENTRY_AMOUNT_CEILING_MINOR)
    assert ceiling.entries[0].amount_minor == ENTRY_AMOUNT_CEILING_MINOR
