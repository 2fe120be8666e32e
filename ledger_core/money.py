"""Money: ISO 4217 currencies, decimal strings in major units and integer minor units.

This is the only module that knows about decimals. Everything else carries amounts as
integers of minor units (cents, yen, fils): an entry's amount fits a PostgreSQL BIGINT, an
account's posted totals fit 38 decimal digits (NUMERIC(38, 0)).

Invariant: `parse_amount` accepts only plain positive decimal strings with no more decimals
than the currency's exponent, and `format_amount(parse_amount(c, s), c)` is `s` padded to
the exponent.
"""

from __future__ import annotations

import re
from functools import cache

from iso4217 import Currency as _Iso4217

from ledger_core.errors import InvalidAmount, UnsupportedCurrency, quoted

BIGINT_MAX = 2**63 - 1
# An account's posted totals only grow, so they are stored wider than any amount: 38 digits
# (PostgreSQL NUMERIC(38, 0); zero-padded text on SQLite, see `store.tables.Total`).
TOTAL_DIGITS = 38
TOTAL_MAX = 10**TOTAL_DIGITS - 1

_AMOUNT_PATTERN = re.compile(r"(0|[1-9][0-9]*)(?:\.([0-9]+))?")
_CURRENCY_PATTERN = re.compile(r"[A-Z]{3}")


@cache
def currency_exponent(currency: str) -> int:
    """Return the ISO 4217 minor-unit exponent of `currency` ("USD" -> 2, "JPY" -> 0).

    Codes without an exponent (precious metals, testing codes) are refused: a ledger cannot
    hold integer minor units of them.
    """
    if not _CURRENCY_PATTERN.fullmatch(currency):
        raise UnsupportedCurrency(f"currency {quoted(currency)} is not an upper-case ISO 4217 code")
    try:
        exponent = _Iso4217(currency).exponent
    except ValueError:
        raise UnsupportedCurrency(f"currency {quoted(currency)} is not an ISO 4217 code") from None
    if exponent is None:
        raise UnsupportedCurrency(f"currency {quoted(currency)} has no minor unit in ISO 4217")
    return int(exponent)


def parse_amount(text: str, currency: str) -> int:
    """Turn a decimal string in major units into positive minor units of `currency`.

    "125.00" USD -> 12500, "500" JPY -> 500. Refused: signs, exponents, spaces, NaN,
    zero, more decimals than the currency allows, and values beyond BIGINT.
    """
    exponent = currency_exponent(currency)
    match = _AMOUNT_PATTERN.fullmatch(text)
    if match is None:
        raise InvalidAmount(f'amount {text[:40]!r} is not a plain decimal string such as "125.00"')
    whole, fraction = match.group(1), match.group(2) or ""
    if len(fraction) > exponent:
        raise InvalidAmount(
            f"amount {text[:40]!r} has {len(fraction)} decimals; {currency} allows {exponent}"
        )
    if len(whole) > 20:
        raise InvalidAmount(f"amount {text[:40]!r} is beyond the largest storable amount")
    minor = int(whole + fraction.ljust(exponent, "0"))
    if minor <= 0:
        raise InvalidAmount(f"amount {text!r} must be greater than zero")
    if minor > BIGINT_MAX:
        raise InvalidAmount(f"amount {text!r} is beyond the largest storable amount")
    return minor


def format_amount(amount_minor: int, currency: str) -> str:
    """Turn minor units into a decimal string with exactly the currency's decimals."""
    exponent = currency_exponent(currency)
    sign = "-" if amount_minor < 0 else ""
    digits = str(abs(amount_minor)).rjust(exponent + 1, "0")
    if exponent == 0:
        return sign + digits
    return f"{sign}{digits[:-exponent]}.{digits[-exponent:]}"
