"""Stateless rules: a posting is well-formed before any ledger state is read.

`build_posting` refuses what is wrong in itself; `body_hash` decides whether two bodies
mean the same posting; `partition_of` routes a posting to the same worker on every process.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace

import pytest

from ledger_core.errors import (
    AccountsMustBeDifferent,
    InvalidAmount,
    InvalidEntries,
    InvalidIdempotencyKey,
    InvalidMetadata,
    Unbalanced,
    UnsupportedCurrency,
)
from ledger_core.model import AccountId, Direction, Entry, Posting
from ledger_core.rules import (
    RawEntry,
    body_hash,
    build_posting,
    partition_of,
    posting_from_document,
    posting_to_document,
)

CASH = AccountId(uuid.UUID("00000000-0000-4000-8000-000000000001"))
WALLET = AccountId(uuid.UUID("00000000-0000-4000-8000-000000000002"))
FEES = AccountId(uuid.UUID("00000000-0000-4000-8000-000000000003"))
MERCHANT = AccountId(uuid.UUID("00000000-0000-4000-8000-000000000004"))

DEBIT = Direction.DEBIT
CREDIT = Direction.CREDIT


def debit(account_id: AccountId, amount: str) -> RawEntry:
    return RawEntry(account_id, DEBIT, amount)


def credit(account_id: AccountId, amount: str) -> RawEntry:
    return RawEntry(account_id, CREDIT, amount)


def purchase(
    *,
    idempotency_key: str = "order-1001",
    currency: str = "USD",
    entries: Sequence[RawEntry] | None = None,
    reference: str | None = "order 1001",
    description: str | None = "Coffee beans",
    metadata: Mapping[str, object] | None = None,
) -> Posting:
    """A customer pays 125.00 from their wallet: 124.00 to the merchant, 1.00 in fees."""
    return build_posting(
        idempotency_key=idempotency_key,
        currency=currency,
        entries=entries
        if entries is not None
        else [debit(WALLET, "125.00"), credit(MERCHANT, "124.00"), credit(FEES, "1.00")],
        reference=reference,
        description=description,
        metadata={"channel": "web"} if metadata is None else metadata,
    )


def random_account_ids(count: int, seed: int) -> list[AccountId]:
    rng = random.Random(seed)
    return [AccountId(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(count)]


# build_posting: the happy path


def test_build_posting_normalises_amounts_to_minor_units() -> None:
    posting = purchase()

    assert posting == Posting(
        idempotency_key="order-1001",
        currency="USD",
        entries=(
            Entry(WALLET, DEBIT, 12500),
            Entry(MERCHANT, CREDIT, 12400),
            Entry(FEES, CREDIT, 100),
        ),
        reference="order 1001",
        description="Coffee beans",
        metadata={"channel": "web"},
    )


def test_build_posting_without_metadata_gives_an_empty_map() -> None:
    posting = build_posting(
        idempotency_key="k", currency="JPY", entries=[debit(CASH, "500"), credit(WALLET, "500")]
    )

    assert posting.metadata == {}
    assert posting.reference is None
    assert posting.description is None
    assert posting.entries == (Entry(CASH, DEBIT, 500), Entry(WALLET, CREDIT, 500))


def test_build_posting_accepts_the_largest_entry_count() -> None:
    entries = [debit(CASH, "0.01")] * 32 + [credit(WALLET, "0.01")] * 32

    posting = purchase(entries=entries)

    assert len(posting.entries) == 64


def test_build_posting_accepts_the_largest_metadata() -> None:
    metadata = {f"{i:064d}": "v" * 512 for i in range(16)}

    assert purchase(metadata=metadata).metadata == metadata


# build_posting: refusals


@pytest.mark.parametrize("count", [0, 1, 65, 100])
def test_build_posting_refuses_too_few_or_too_many_entries(count: int) -> None:
    half = count // 2
    entries = [debit(CASH, "1.00")] * half + [credit(WALLET, "1.00")] * (count - half)

    with pytest.raises(InvalidEntries) as raised:
        purchase(entries=entries)
    assert raised.value.code == "invalid_entries"


@pytest.mark.parametrize(
    "entries",
    [
        pytest.param([debit(CASH, "125.00"), credit(WALLET, "124.99")], id="one-cent-short"),
        pytest.param([debit(CASH, "1.00"), debit(WALLET, "1.00")], id="only-debits"),
        pytest.param([credit(CASH, "1.00"), credit(WALLET, "1.00")], id="only-credits"),
        pytest.param(
            [debit(CASH, "1.00"), credit(WALLET, "0.50"), credit(FEES, "0.51")],
            id="three-entries-over",
        ),
    ],
)
def test_build_posting_refuses_unbalanced_entries(entries: list[RawEntry]) -> None:
    with pytest.raises(Unbalanced) as raised:
        purchase(entries=entries)
    assert raised.value.code == "unbalanced"


def test_build_posting_refuses_a_bad_amount_and_a_bad_currency() -> None:
    with pytest.raises(InvalidAmount):
        purchase(entries=[debit(CASH, "0"), credit(WALLET, "0")])
    with pytest.raises(InvalidAmount):
        purchase(currency="JPY", entries=[debit(CASH, "1.5"), credit(WALLET, "1.5")])
    with pytest.raises(UnsupportedCurrency):
        purchase(currency="XAU", entries=[debit(CASH, "1"), credit(WALLET, "1")])


THE_FREEZE = "92233720368547658.07"  # issue 11: one posting of it froze an account


@pytest.mark.parametrize(
    ("entries", "account"),
    [
        pytest.param(
            [debit(CASH, THE_FREEZE), credit(CASH, THE_FREEZE)], CASH, id="issue-11-freeze"
        ),
        pytest.param([debit(CASH, "1.00"), credit(CASH, "1.00")], CASH, id="one-account"),
        pytest.param(
            [debit(WALLET, "2.00"), credit(MERCHANT, "1.00"), credit(WALLET, "1.00")],
            WALLET,
            id="credit-back-to-the-payer",
        ),
        pytest.param(
            [
                credit(FEES, "1.00"),
                debit(CASH, "1.00"),
                debit(FEES, "1.00"),
                credit(WALLET, "1.00"),
            ],
            FEES,
            id="credit-before-its-debit",
        ),
        pytest.param([debit(CASH, "1.00"), credit(CASH, "2.00")], CASH, id="unbalanced-too"),
        pytest.param([debit(CASH, "abc"), credit(CASH, "abc")], CASH, id="bad-amounts-too"),
    ],
)
def test_build_posting_refuses_an_account_on_both_sides_before_its_amounts(
    entries: list[RawEntry], account: AccountId
) -> None:
    with pytest.raises(AccountsMustBeDifferent) as raised:
        purchase(entries=entries)

    assert raised.value.code == "accounts_must_be_different"
    assert raised.value.http_status == 422
    assert raised.value.detail == (
        f"account {account} is both debited and credited; "
        "a transaction moves money between different accounts"
    )


def test_build_posting_accepts_one_account_on_several_entries_of_one_side() -> None:
    posting = purchase(entries=[debit(CASH, "0.01"), debit(CASH, "2.00"), credit(WALLET, "2.01")])

    assert [e.account_id for e in posting.entries] == [CASH, CASH, WALLET]


def test_build_posting_refuses_an_entry_above_the_largest_amount_of_one_entry() -> None:
    with pytest.raises(InvalidAmount) as raised:
        purchase(entries=[debit(CASH, THE_FREEZE), credit(WALLET, THE_FREEZE)])

    assert raised.value.code == "invalid_amount"
    assert raised.value.detail == (
        "amount 92233720368547658.07 USD is above the largest amount of one entry, "
        "10000000000000.00 USD"
    )


def test_build_posting_takes_the_deployments_largest_amount_of_one_entry() -> None:
    entries = [debit(CASH, "5.00"), credit(WALLET, "2.50"), credit(FEES, "2.50")]

    assert (
        len(
            build_posting(
                idempotency_key="k", currency="USD", entries=entries, amount_max_minor=500
            ).entries
        )
        == 3
    )
    with pytest.raises(InvalidAmount) as raised:
        build_posting(idempotency_key="k", currency="USD", entries=entries, amount_max_minor=499)
    assert raised.value.detail == (
        "amount 5.00 USD is above the largest amount of one entry, 4.99 USD"
    )


@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param({"count": 3}, id="integer-value"),
        pytest.param({"flag": None}, id="none-value"),
        pytest.param({"nested": {"a": "b"}}, id="map-value"),
        pytest.param({"list": ["a"]}, id="list-value"),
        pytest.param({f"k{i}": "v" for i in range(17)}, id="seventeen-keys"),
        pytest.param({"k" * 65: "v"}, id="key-of-65"),
        pytest.param({"": "v"}, id="empty-key"),
        pytest.param({"note": "v" * 513}, id="value-of-513"),
    ],
)
def test_build_posting_refuses_metadata_that_is_not_a_small_map_of_short_strings(
    metadata: dict[str, object],
) -> None:
    with pytest.raises(InvalidMetadata) as raised:
        purchase(metadata=metadata)
    assert raised.value.code == "invalid_metadata"


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("", id="empty"),
        pytest.param(" ", id="space"),
        pytest.param("order 1001", id="inner-space"),
        pytest.param("order-1001 ", id="trailing-space"),
        pytest.param("order-1001\n", id="trailing-newline"),
        pytest.param("a" * 129, id="129-characters"),
        pytest.param("orders/1001", id="slash"),
        pytest.param("order\u00e9", id="non-ascii-letter"),
        pytest.param("order%201", id="percent"),
    ],
)
def test_build_posting_refuses_bad_idempotency_keys(key: str) -> None:
    with pytest.raises(InvalidIdempotencyKey) as raised:
        purchase(idempotency_key=key)
    assert raised.value.code == "invalid_idempotency_key"


@pytest.mark.parametrize("key", ["a", "a" * 128, "Order_1001.retry:2~x-y", "0"])
def test_build_posting_accepts_idempotency_keys_of_the_allowed_set(key: str) -> None:
    assert purchase(idempotency_key=key).idempotency_key == key


# body_hash


def test_body_hash_is_equal_for_amounts_that_mean_the_same_minor_units() -> None:
    one_decimal = purchase(entries=[debit(CASH, "125.0"), credit(WALLET, "125")])
    two_decimals = purchase(entries=[debit(CASH, "125.00"), credit(WALLET, "125.00")])

    assert body_hash(one_decimal) == body_hash(two_decimals)


def test_body_hash_ignores_metadata_key_order() -> None:
    forward = purchase(metadata={"a": "1", "b": "2"})
    backward = purchase(metadata={"b": "2", "a": "1"})

    assert body_hash(forward) == body_hash(backward)


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"idempotency_key": "order-1002"}, id="idempotency-key"),
        pytest.param({"currency": "EUR"}, id="currency"),
        pytest.param({"reference": "order 1002"}, id="reference"),
        pytest.param({"reference": None}, id="reference-removed"),
        pytest.param({"reference": ""}, id="reference-empty"),
        pytest.param({"description": "Tea"}, id="description"),
        pytest.param({"description": None}, id="description-removed"),
        pytest.param({"metadata": {"channel": "app"}}, id="metadata-value"),
        pytest.param({"metadata": {"Channel": "web"}}, id="metadata-key"),
        pytest.param({"metadata": {}}, id="metadata-removed"),
        pytest.param(
            {"entries": [debit(WALLET, "125.01"), credit(MERCHANT, "124.01"), credit(FEES, "1")]},
            id="amount",
        ),
        pytest.param(
            {"entries": [debit(WALLET, "125.00"), credit(CASH, "124.00"), credit(FEES, "1.00")]},
            id="account",
        ),
        pytest.param(
            {"entries": [credit(WALLET, "125.00"), debit(MERCHANT, "124.00"), debit(FEES, "1.00")]},
            id="directions",
        ),
        pytest.param(
            {
                "entries": [
                    debit(WALLET, "125.00"),
                    credit(MERCHANT, "123.00"),
                    credit(FEES, "1.00"),
                    credit(FEES, "1.00"),
                ]
            },
            id="extra-entry",
        ),
    ],
)
def test_body_hash_differs_when_any_field_differs(changes: dict[str, object]) -> None:
    original = purchase()
    changed = purchase(**changes)  # type: ignore[arg-type]

    assert changed != original
    assert body_hash(changed) != body_hash(original)


def test_body_hash_is_a_sha256_hex_digest_and_deterministic() -> None:
    digest = body_hash(purchase())

    assert digest == body_hash(purchase())
    assert len(digest) == 64
    assert set(digest) <= set("0123456789abcdef")


# Documents: the plain-data form stored in intake and carried by jobs


def test_posting_document_round_trips() -> None:
    posting = purchase(metadata={"channel": "web", "customer": "c-42"})

    assert posting_from_document(posting_to_document(posting)) == posting


def test_posting_document_round_trips_through_json() -> None:
    posting = purchase(reference=None, description=None, metadata={})
    document = json.loads(json.dumps(posting_to_document(posting)))

    restored = posting_from_document(document)

    assert restored == posting
    assert restored.entries[0].account_id == WALLET
    assert isinstance(restored.entries[0].account_id, uuid.UUID)
    assert restored.entries[0].direction is DEBIT
    assert body_hash(restored) == body_hash(posting)


def test_posting_document_holds_only_plain_data() -> None:
    document = posting_to_document(purchase())

    assert document == {
        "idempotency_key": "order-1001",
        "currency": "USD",
        "entries": [
            [str(WALLET), "debit", 12500],
            [str(MERCHANT), "credit", 12400],
            [str(FEES), "credit", 100],
        ],
        "reference": "order 1001",
        "description": "Coffee beans",
        "metadata": {"channel": "web"},
    }


# Routing and partitions


def test_routing_account_is_the_first_debited_account() -> None:
    posting = purchase(
        entries=[
            credit(MERCHANT, "124.00"),
            debit(WALLET, "100.00"),
            credit(FEES, "1.00"),
            debit(CASH, "25.00"),
        ]
    )

    assert posting.routing_account_id == WALLET
    assert replace(posting, entries=posting.entries[::-1]).routing_account_id == CASH


def test_partition_of_is_deterministic_across_calls() -> None:
    for account_id in random_account_ids(200, seed=1):
        first = partition_of(account_id, 16)
        assert all(partition_of(account_id, 16) == first for _ in range(3))
        assert partition_of(AccountId(uuid.UUID(str(account_id))), 16) == first


def test_partition_of_is_the_same_in_another_process() -> None:
    """A restart or another worker must route an account to the same partition."""
    account_ids = random_account_ids(50, seed=2)
    program = (
        "import sys, uuid\n"
        "from ledger_core.rules import partition_of\n"
        "print(' '.join(str(partition_of(uuid.UUID(a), 16)) for a in sys.argv[1:]))\n"
    )
    environment = {**os.environ, "PYTHONHASHSEED": "12345"}

    completed = subprocess.run(
        [sys.executable, "-c", program, *map(str, account_ids)],
        capture_output=True,
        text=True,
        check=True,
        env=environment,
    )

    here = [partition_of(account_id, 16) for account_id in account_ids]
    assert [int(p) for p in completed.stdout.split()] == here


def test_partition_of_spreads_over_every_partition_and_stays_in_range() -> None:
    partitions = [partition_of(account_id, 16) for account_id in random_account_ids(1000, 3)]

    assert set(partitions) == set(range(16))
    assert max(partitions.count(p) for p in range(16)) < 2 * 1000 // 16


@pytest.mark.parametrize("partitions", [1, 2, 7, 1024])
def test_partition_of_lies_in_range_for_any_count(partitions: int) -> None:
    for account_id in random_account_ids(300, seed=partitions):
        assert 0 <= partition_of(account_id, partitions) < partitions


# Refusal details: what a client reads in the problem body


def test_unbalanced_detail_gives_both_sides_in_minor_units() -> None:
    """Dr wallet 125.00, Cr merchant 124.00, Cr fees 0.99: a cent short on the credit side."""
    entries = [debit(WALLET, "125.00"), credit(MERCHANT, "124.00"), credit(FEES, "0.99")]

    with pytest.raises(Unbalanced) as raised:
        purchase(entries=entries)

    assert raised.value.detail == "debits (12500) must equal credits (12499) in minor units"


@pytest.mark.parametrize("value", [3, None, {"a": "b"}, ["a"], b"bytes"])
def test_metadata_value_detail_names_the_key_that_is_not_a_string(value: object) -> None:
    with pytest.raises(InvalidMetadata) as raised:
        purchase(metadata={"channel": "web", "count": value})

    assert raised.value.detail == "metadata value of 'count' must be a string"
