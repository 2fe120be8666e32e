"""Money: decimal strings in major units in, integer minor units out, and back.

`money.py` is the only module that knows about decimals, so every way a client can spell an
amount wrong is refused here, before any other module sees it.
"""

from __future__ import annotations

import pytest

from ledger_core.errors import InvalidAmount, UnsupportedCurrency
from ledger_core.money import BIGINT_MAX, currency_exponent, format_amount, parse_amount


@pytest.mark.parametrize(
    ("currency", "exponent"),
    [("USD", 2), ("EUR", 2), ("JPY", 0), ("BHD", 3), ("KWD", 3), ("CLF", 4)],
)
def test_currency_exponent_follows_iso4217(currency: str, exponent: int) -> None:
    assert currency_exponent(currency) == exponent


@pytest.mark.parametrize(
    "currency",
    [
        pytest.param("usd", id="lower-case"),
        pytest.param("Usd", id="mixed-case"),
        pytest.param("US", id="two-letters"),
        pytest.param("USDX", id="four-letters"),
        pytest.param("", id="empty"),
        pytest.param(" USD", id="leading-space"),
        pytest.param("ZZZ", id="not-assigned"),
        pytest.param("XAU", id="gold-has-no-minor-unit"),
        pytest.param("XXX", id="no-currency-has-no-minor-unit"),
        pytest.param("XTS", id="testing-code-has-no-minor-unit"),
    ],
)
def test_currency_exponent_refuses_codes_without_minor_unit(currency: str) -> None:
    with pytest.raises(UnsupportedCurrency) as raised:
        currency_exponent(currency)
    assert raised.value.code == "unsupported_currency"


@pytest.mark.parametrize(
    ("text", "currency", "amount_minor"),
    [
        ("125.00", "USD", 12500),
        ("125.5", "USD", 12550),
        ("125", "USD", 12500),
        ("0.01", "USD", 1),
        ("0.5", "USD", 50),
        ("500", "JPY", 500),
        ("1", "JPY", 1),
        ("1.234", "BHD", 1234),
        ("0.001", "BHD", 1),
        ("1.2", "BHD", 1200),
        ("92233720368547758.07", "USD", BIGINT_MAX),
        ("9223372036854775807", "JPY", BIGINT_MAX),
    ],
)
def test_parse_amount_gives_minor_units(text: str, currency: str, amount_minor: int) -> None:
    assert parse_amount(text, currency) == amount_minor


@pytest.mark.parametrize(
    ("text", "currency"),
    [
        pytest.param("", "USD", id="empty"),
        pytest.param("0", "USD", id="zero"),
        pytest.param("0.00", "USD", id="zero-with-decimals"),
        pytest.param("0", "JPY", id="zero-yen"),
        pytest.param("-1", "USD", id="minus-sign"),
        pytest.param("+1", "USD", id="plus-sign"),
        pytest.param("1e3", "USD", id="exponent"),
        pytest.param("1E3", "USD", id="upper-exponent"),
        pytest.param("NaN", "USD", id="nan"),
        pytest.param("Infinity", "USD", id="infinity"),
        pytest.param("inf", "USD", id="inf"),
        pytest.param(" 1", "USD", id="leading-space"),
        pytest.param("1 ", "USD", id="trailing-space"),
        pytest.param("1\n", "USD", id="trailing-newline"),
        pytest.param("1.", "USD", id="bare-point"),
        pytest.param(".5", "USD", id="no-whole-part"),
        pytest.param("01", "USD", id="leading-zero"),
        pytest.param("00.50", "USD", id="double-leading-zero"),
        pytest.param("1,00", "USD", id="decimal-comma"),
        pytest.param("1_000", "USD", id="underscore"),
        pytest.param("1.2.3", "USD", id="two-points"),
        pytest.param("0x10", "USD", id="hexadecimal"),
        pytest.param("\u0661\u0662", "USD", id="arabic-indic-digits"),
        pytest.param("\uff11", "JPY", id="fullwidth-digit"),
        pytest.param("12.345", "USD", id="three-decimals-for-usd"),
        pytest.param("1.5", "JPY", id="decimals-for-yen"),
        pytest.param("1.0", "JPY", id="zero-decimal-for-yen"),
        pytest.param("1.2345", "BHD", id="four-decimals-for-bhd"),
        pytest.param("92233720368547758.08", "USD", id="bigint-plus-one-cent"),
        pytest.param("9223372036854775808", "JPY", id="bigint-plus-one-yen"),
        pytest.param("99999999999999999999", "JPY", id="twenty-digits"),
        pytest.param("1" * 5000, "JPY", id="very-long-whole"),
        pytest.param("1." + "0" * 5000, "USD", id="very-long-fraction"),
        pytest.param("9" * 100_000 + ".00", "USD", id="huge-whole-with-decimals"),
    ],
)
def test_parse_amount_refuses_anything_but_a_plain_positive_decimal(
    text: str, currency: str
) -> None:
    with pytest.raises(InvalidAmount) as raised:
        parse_amount(text, currency)
    assert raised.value.code == "invalid_amount"


def test_invalid_amount_detail_stays_short_for_huge_input() -> None:
    with pytest.raises(InvalidAmount) as raised:
        parse_amount("9" * 100_000, "USD")
    assert len(raised.value.detail) < 200


@pytest.mark.parametrize("currency", ["usd", "XXX", "XAU", "ZZZ", "US"])
def test_parse_amount_refuses_unsupported_currency(currency: str) -> None:
    with pytest.raises(UnsupportedCurrency):
        parse_amount("1", currency)


@pytest.mark.parametrize(
    ("amount_minor", "currency", "text"),
    [
        (12500, "USD", "125.00"),
        (12550, "USD", "125.50"),
        (1, "USD", "0.01"),
        (10, "USD", "0.10"),
        (0, "USD", "0.00"),
        (500, "JPY", "500"),
        (0, "JPY", "0"),
        (1234, "BHD", "1.234"),
        (5, "BHD", "0.005"),
        (BIGINT_MAX, "USD", "92233720368547758.07"),
    ],
)
def test_format_amount_writes_exactly_the_currency_decimals(
    amount_minor: int, currency: str, text: str
) -> None:
    assert format_amount(amount_minor, currency) == text


@pytest.mark.parametrize(
    ("amount_minor", "currency", "text"),
    [
        (-5, "USD", "-0.05"),
        (-12550, "USD", "-125.50"),
        (-100, "USD", "-1.00"),
        (-500, "JPY", "-500"),
        (-1, "BHD", "-0.001"),
    ],
)
def test_format_amount_writes_negative_balances_with_a_minus_sign(
    amount_minor: int, currency: str, text: str
) -> None:
    assert format_amount(amount_minor, currency) == text


def test_format_amount_refuses_unsupported_currency() -> None:
    with pytest.raises(UnsupportedCurrency):
        format_amount(100, "XAU")


@pytest.mark.parametrize(
    ("text", "currency", "formatted"),
    [
        ("125.00", "USD", "125.00"),
        ("125.5", "USD", "125.50"),
        ("125", "USD", "125.00"),
        ("0.07", "USD", "0.07"),
        ("500", "JPY", "500"),
        ("1.234", "BHD", "1.234"),
        ("1.2", "BHD", "1.200"),
        ("92233720368547758.07", "USD", "92233720368547758.07"),
    ],
)
def test_format_of_parse_is_the_input_padded_to_the_exponent(
    text: str, currency: str, formatted: str
) -> None:
    assert format_amount(parse_amount(text, currency), currency) == formatted


@pytest.mark.parametrize("currency", ["USD", "JPY", "BHD", "CLF"])
@pytest.mark.parametrize("amount_minor", [1, 9, 10, 99, 100, 101, 123456789, BIGINT_MAX])
def test_parse_of_format_gives_back_the_minor_units(amount_minor: int, currency: str) -> None:
    assert parse_amount(format_amount(amount_minor, currency), currency) == amount_minor


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("1\u0662", id="arabic-indic-digit-after-ascii-digit"),
        pytest.param("12\uff13", id="fullwidth-digit-after-ascii-digits"),
        pytest.param("1.\u0665\u0660", id="arabic-indic-decimals"),
        pytest.param("1.5\u0660", id="arabic-indic-zero-as-second-decimal"),
        pytest.param("9\u0969", id="devanagari-digit-after-ascii-digit"),
    ],
)
def test_parse_amount_refuses_non_ascii_digits_after_an_ascii_first_digit(text: str) -> None:
    """Python's int() reads any Unicode digit, so only the pattern keeps "1\u0662" from 12."""
    with pytest.raises(InvalidAmount) as raised:
        parse_amount(text, "USD")
    assert raised.value.detail == (
        f'amount {text!r} is not a plain decimal string such as "125.00"'
    )


# The detail of each refusal: it quotes at most the first 40 characters of what was sent.


@pytest.mark.parametrize(
    ("text", "currency", "detail"),
    [
        pytest.param(
            "12,50",
            "EUR",
            "amount '12,50' is not a plain decimal string such as \"125.00\"",
            id="not-plain",
        ),
        pytest.param(
            "x" * 41,
            "EUR",
            f'amount {"x" * 40!r} is not a plain decimal string such as "125.00"',
            id="not-plain-long",
        ),
        pytest.param(
            "12.345", "USD", "amount '12.345' has 3 decimals; USD allows 2", id="too-many-decimals"
        ),
        pytest.param(
            "1." + "0" * 45,
            "USD",
            f"amount {'1.' + '0' * 38!r} has 45 decimals; USD allows 2",
            id="too-many-decimals-long",
        ),
        pytest.param("5.5", "JPY", "amount '5.5' has 1 decimals; JPY allows 0", id="yen-decimal"),
        pytest.param(
            "1" * 41,
            "JPY",
            f"amount {'1' * 40!r} is beyond the largest storable amount",
            id="too-many-digits",
        ),
        pytest.param(
            "9223372036854775808",
            "JPY",
            "amount '9223372036854775808' is beyond the largest storable amount",
            id="bigint-plus-one",
        ),
        pytest.param("0.00", "USD", "amount '0.00' must be greater than zero", id="zero"),
    ],
)
def test_invalid_amount_detail_says_what_is_wrong(text: str, currency: str, detail: str) -> None:
    with pytest.raises(InvalidAmount) as raised:
        parse_amount(text, currency)
    assert raised.value.detail == detail


# `currency_exponent` is cached with @cache, and mutmut does not mutate decorated functions,
# so each of its three refusals is pinned here by its detail.


@pytest.mark.parametrize(
    ("currency", "detail"),
    [
        pytest.param("usd", "currency 'usd' is not an upper-case ISO 4217 code", id="lower-case"),
        pytest.param("US", "currency 'US' is not an upper-case ISO 4217 code", id="two-letters"),
        pytest.param("ZZZ", "currency 'ZZZ' is not an ISO 4217 code", id="not-assigned"),
        pytest.param("XAU", "currency 'XAU' has no minor unit in ISO 4217", id="gold"),
    ],
)
def test_unsupported_currency_detail_says_why(currency: str, detail: str) -> None:
    with pytest.raises(UnsupportedCurrency) as raised:
        currency_exponent(currency)
    assert raised.value.detail == detail
