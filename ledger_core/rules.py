"""Stateless rules: what makes a posting well-formed before any ledger state is read.

Everything here is a pure function. A posting that passes `build_posting` is balanced, has
2 to 64 entries of positive integer minor units, none above the largest amount of one entry,
in one supported currency, debits and credits different accounts, and carries small string
metadata. Refusals that need ledger state live in `engine.py`, which holds the two rules that
bound what a posting adds to a total (`check_accounts_differ`, `check_amounts`) again.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from ledger_core.errors import (
    AccountsMustBeDifferent,
    InvalidAmount,
    InvalidEntries,
    InvalidFlags,
    InvalidIdempotencyKey,
    InvalidMetadata,
    InvalidText,
    Unbalanced,
)
from ledger_core.model import AccountFlag, AccountId, Direction, Entry, Posting
from ledger_core.money import BIGINT_MAX, currency_exponent, format_amount, parse_amount

ENTRIES_MIN = 2
ENTRIES_MAX = 64
METADATA_KEYS_MAX = 16
METADATA_KEY_LENGTH_MAX = 64
METADATA_VALUE_LENGTH_MAX = 512
IDEMPOTENCY_KEY_PATTERN = re.compile(r"[A-Za-z0-9._:~-]{1,128}")
# The largest amount of one entry, in minor units of any currency, unless a deployment sets
# `entry_amount_max_minor`: 10 trillion USD, 1 quadrillion JPY, 1 trillion KWD. It is below
# 2**53, so every amount is also exact as a double (a JavaScript number).
ENTRY_AMOUNT_MAX_MINOR = 10**15
# The most a deployment may set: 64 entries of it still sum within a BIGINT, so whatever one
# posting adds to one account's totals fits the entries' column.
ENTRY_AMOUNT_CEILING_MINOR = BIGINT_MAX // ENTRIES_MAX


@dataclass(frozen=True)
class RawEntry:
    """An entry as a client wrote it: the amount is still a decimal string."""

    account_id: AccountId
    direction: Direction
    amount: str


def check_idempotency_key(key: str) -> str:
    if not IDEMPOTENCY_KEY_PATTERN.fullmatch(key):
        raise InvalidIdempotencyKey(
            "idempotency_key must be 1-128 characters of letters, digits and . _ : ~ -"
        )
    return key


def check_text(field: str, value: str | None) -> str | None:
    """Text is stored as UTF-8 in PostgreSQL: no NUL characters, no unpaired surrogates."""
    if value is None:
        return None
    if "\x00" in value:
        raise InvalidText(f"{field} must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidText(f"{field} is not valid Unicode text") from None
    return value


def check_account(*, name: str, currency: str, flags: AccountFlag) -> None:
    """What makes an account well-formed: readable name, ISO currency, compatible flags."""
    check_text("name", name)
    currency_exponent(currency)
    both = AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS | AccountFlag.CREDITS_MUST_NOT_EXCEED_DEBITS
    if flags & both == both:
        raise InvalidFlags(
            "debits_must_not_exceed_credits and credits_must_not_exceed_debits exclude each other"
        )


def check_metadata(metadata: Mapping[str, object]) -> dict[str, str]:
    if len(metadata) > METADATA_KEYS_MAX:
        raise InvalidMetadata(f"metadata holds at most {METADATA_KEYS_MAX} keys")
    for key, value in metadata.items():
        if not 1 <= len(key) <= METADATA_KEY_LENGTH_MAX:
            raise InvalidMetadata(f"metadata keys are 1-{METADATA_KEY_LENGTH_MAX} characters")
        if not isinstance(value, str):
            raise InvalidMetadata(f"metadata value of {key!r} must be a string")
        check_text("metadata key", key)
        check_text(f"metadata value of {key!r}", value)
        if len(value) > METADATA_VALUE_LENGTH_MAX:
            raise InvalidMetadata(
                f"metadata value of {key!r} is longer than {METADATA_VALUE_LENGTH_MAX} characters"
            )
    return {key: str(value) for key, value in metadata.items()}


def parse_entries(
    raw_entries: Sequence[RawEntry], currency: str, amount_max_minor: int = ENTRY_AMOUNT_MAX_MINOR
) -> tuple[Entry, ...]:
    """The entries in minor units. Refused in this order: the count, an account on both
    sides, then each amount (its form, then the largest amount of one entry)."""
    if not ENTRIES_MIN <= len(raw_entries) <= ENTRIES_MAX:
        raise InvalidEntries(
            f"a transaction has {ENTRIES_MIN} to {ENTRIES_MAX} entries, not {len(raw_entries)}"
        )
    check_accounts_differ(raw_entries)
    entries = tuple(
        Entry(raw.account_id, raw.direction, parse_amount(raw.amount, currency))
        for raw in raw_entries
    )
    check_amounts(entries, currency, amount_max_minor)
    return entries


def check_accounts_differ(entries: Sequence[RawEntry] | Sequence[Entry]) -> None:
    """No account is both debited and credited by one posting. Such a posting moves no money,
    and before totals were wide, one of 2**63 minor units froze its account for good."""
    debited = {entry.account_id for entry in entries if entry.direction is Direction.DEBIT}
    for entry in entries:
        if entry.direction is Direction.CREDIT and entry.account_id in debited:
            raise AccountsMustBeDifferent(
                f"account {entry.account_id} is both debited and credited; "
                "a transaction moves money between different accounts"
            )


def check_amounts(entries: Sequence[Entry], currency: str, amount_max_minor: int) -> None:
    """No entry is above the largest amount of one entry, `amount_max_minor`."""
    for entry in entries:
        if entry.amount_minor > amount_max_minor:
            raise InvalidAmount(
                f"amount {format_amount(entry.amount_minor, currency)} {currency} is above "
                f"the largest amount of one entry, {format_amount(amount_max_minor, currency)} "
                f"{currency}"
            )


def check_balanced(entries: Sequence[Entry]) -> None:
    debits = sum(e.amount_minor for e in entries if e.direction is Direction.DEBIT)
    credits = sum(e.amount_minor for e in entries if e.direction is Direction.CREDIT)
    if debits != credits:
        raise Unbalanced(f"debits ({debits}) must equal credits ({credits}) in minor units")


def build_posting(
    *,
    idempotency_key: str,
    currency: str,
    entries: Sequence[RawEntry],
    reference: str | None = None,
    description: str | None = None,
    metadata: Mapping[str, object] | None = None,
    amount_max_minor: int = ENTRY_AMOUNT_MAX_MINOR,
) -> Posting:
    """Check everything that needs no ledger state and return the normalised posting.

    `amount_max_minor` is the deployment's `entry_amount_max_minor`; the worker's engine
    holds the same limit a second time."""
    check_idempotency_key(idempotency_key)
    currency_exponent(currency)
    parsed = parse_entries(entries, currency, amount_max_minor)
    check_balanced(parsed)
    return Posting(
        idempotency_key=idempotency_key,
        currency=currency,
        entries=parsed,
        reference=check_text("reference", reference),
        description=check_text("description", description),
        metadata=check_metadata(metadata or {}),
    )


def posting_to_document(posting: Posting) -> dict[str, object]:
    """The canonical plain-data form of a posting: stored in intake and carried by jobs."""
    return {
        "idempotency_key": posting.idempotency_key,
        "currency": posting.currency,
        "entries": [
            [str(e.account_id), e.direction.value, e.amount_minor] for e in posting.entries
        ],
        "reference": posting.reference,
        "description": posting.description,
        "metadata": posting.metadata,
    }


def posting_from_document(document: Mapping[str, object]) -> Posting:
    entries = document["entries"]
    metadata = document.get("metadata") or {}
    if not isinstance(entries, list) or not isinstance(metadata, dict):
        # Documents are written by `posting_to_document` alone: this is a damaged row.
        raise TypeError("a stored posting document needs a list of entries and a metadata map")
    return Posting(
        idempotency_key=str(document["idempotency_key"]),
        currency=str(document["currency"]),
        entries=tuple(
            Entry(_account_id(account), _DIRECTIONS[direction], int(amount))
            for account, direction, amount in entries
        ),
        reference=_optional_str(document.get("reference")),
        description=_optional_str(document.get("description")),
        metadata={str(k): str(v) for k, v in metadata.items()},
    )


_DIRECTIONS = {direction.value: direction for direction in Direction}


@lru_cache(maxsize=65_536)
def _account_id(text: str) -> AccountId:
    """Parsed once per process for the accounts a worker keeps seeing (hot accounts)."""
    return AccountId(uuid.UUID(text))


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)


def canonical_document(posting: Posting) -> str:
    """The posting as canonical JSON text (sorted keys, no spaces): stored and hashed as is."""
    return json.dumps(posting_to_document(posting), sort_keys=True, separators=(",", ":"))


def document_hash(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def body_hash(posting: Posting) -> str:
    """SHA-256 of the canonical posting: equal for bodies that mean the same posting.

    Amounts are hashed in minor units, so "125.0" and "125.00" USD are the same body.
    """
    return document_hash(canonical_document(posting))


def partition_of(account_id: AccountId, partitions: int) -> int:
    """Stable partition of an account: the same on every process and every restart."""
    digest = hashlib.blake2b(account_id.bytes, digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions
