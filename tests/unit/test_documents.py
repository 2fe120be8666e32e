"""What is stored and compared on replay must not drift between releases.

Intake stores each posting as its canonical JSON text, its SHA-256 (`body_hash`) and the
partition of its routing account. A client retrying a request after an upgrade is answered
by comparing the new hash with the stored one, and workers find queued postings by the
stored partition. So the exact text, the hash and `partition_of` for known ids are pinned
here: a change to any of them would turn every retry into an idempotency conflict or strand
queued postings on a partition no worker reads.
"""

from __future__ import annotations

import hashlib
import uuid

import pytest

from ledger_core.model import AccountId, Direction, Posting
from ledger_core.rules import (
    RawEntry,
    body_hash,
    build_posting,
    canonical_document,
    document_hash,
    partition_of,
    posting_from_document,
    posting_to_document,
)

WALLET = AccountId(uuid.UUID("00000000-0000-4000-8000-000000000002"))
FEES = AccountId(uuid.UUID("00000000-0000-4000-8000-000000000003"))
MERCHANT = AccountId(uuid.UUID("00000000-0000-4000-8000-000000000004"))


def coffee_purchase(
    *,
    reference: str | None = "order 1001",
    description: str | None = "Coffee beans",
    metadata: dict[str, object] | None = None,
) -> Posting:
    """Alice pays 125.00 from her wallet: 124.00 to the merchant, 1.00 in fees."""
    return build_posting(
        idempotency_key="order-1001",
        currency="USD",
        entries=[
            RawEntry(WALLET, Direction.DEBIT, "125.00"),
            RawEntry(MERCHANT, Direction.CREDIT, "124.0"),
            RawEntry(FEES, Direction.CREDIT, "1"),
        ],
        reference=reference,
        description=description,
        metadata={"channel": "web"} if metadata is None else metadata,
    )


ENTRIES_TEXT = (
    '[["00000000-0000-4000-8000-000000000002","debit",12500],'
    '["00000000-0000-4000-8000-000000000004","credit",12400],'
    '["00000000-0000-4000-8000-000000000003","credit",100]]'
)


def test_canonical_document_is_compact_json_with_sorted_keys_and_minor_units() -> None:
    assert canonical_document(coffee_purchase()) == (
        '{"currency":"USD","description":"Coffee beans",'
        f'"entries":{ENTRIES_TEXT},'
        '"idempotency_key":"order-1001","metadata":{"channel":"web"},"reference":"order 1001"}'
    )


def test_canonical_document_escapes_non_ascii_sorts_metadata_and_writes_null() -> None:
    posting = coffee_purchase(
        reference=None, description="Caf\u00e9 cr\u00e8me", metadata={"b": "2", "a": "1"}
    )

    assert canonical_document(posting) == (
        '{"currency":"USD","description":"Caf\\u00e9 cr\\u00e8me",'
        f'"entries":{ENTRIES_TEXT},'
        '"idempotency_key":"order-1001","metadata":{"a":"1","b":"2"},"reference":null}'
    )


def test_body_hash_is_the_sha256_of_the_canonical_document() -> None:
    posting = coffee_purchase()

    assert body_hash(posting) == hashlib.sha256(canonical_document(posting).encode()).hexdigest()
    assert body_hash(posting) == "a491a228d7192d306a54d0dc434f29df614a5a49afa3d805267adcebd7bf3926"


def test_document_hash_is_sha256_of_the_utf8_text() -> None:
    assert document_hash("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert document_hash("\u00e9") == hashlib.sha256(b"\xc3\xa9").hexdigest()


@pytest.mark.parametrize(
    ("account", "partition_of_16", "partition_of_1024"),
    [
        ("00000000-0000-4000-8000-000000000001", 11, 139),
        ("00000000-0000-4000-8000-000000000002", 12, 1004),
        ("00000000-0000-4000-8000-000000000003", 11, 107),
        ("00000000-0000-4000-8000-000000000004", 0, 864),
    ],
)
def test_partition_of_known_accounts_never_changes(
    account: str, partition_of_16: int, partition_of_1024: int
) -> None:
    account_id = AccountId(uuid.UUID(account))

    assert partition_of(account_id, 16) == partition_of_16
    assert partition_of(account_id, 1024) == partition_of_1024


def test_partition_of_is_the_first_eight_bytes_of_blake2b_read_big_endian() -> None:
    """With 2**64 partitions the modulo keeps the whole digest, so this pins its recipe."""
    account_id = AccountId(uuid.UUID("00000000-0000-4000-8000-000000000001"))
    digest = hashlib.blake2b(account_id.bytes, digest_size=8).digest()

    assert partition_of(account_id, 2**64) == int.from_bytes(digest, "big")
    assert partition_of(account_id, 2**64) == 10961939466471934091


def test_a_document_is_read_back_with_exactly_the_account_ids_it_names() -> None:
    """Ids are read as written, whatever their UUID version (an account imported from
    another system may not carry a version 4 id)."""
    imported = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"  # a version 1 UUID
    document: dict[str, object] = {
        "idempotency_key": "import-1",
        "currency": "USD",
        "entries": [[imported, "debit", 500], [str(WALLET), "credit", 500]],
        "reference": None,
        "description": None,
        "metadata": {},
    }

    posting = posting_from_document(document)

    assert [str(entry.account_id) for entry in posting.entries] == [imported, str(WALLET)]
    assert posting.entries[0].direction is Direction.DEBIT
    assert posting.entries[1].direction is Direction.CREDIT
    assert posting_to_document(posting) == document


@pytest.mark.parametrize("damage", [{"entries": "not a list"}, {"metadata": ["not", "a", "map"]}])
def test_a_damaged_stored_document_is_refused_not_misread(damage: dict[str, object]) -> None:
    document = {
        "idempotency_key": "k",
        "currency": "USD",
        "entries": [[str(uuid.uuid4()), "debit", 1], [str(uuid.uuid4()), "credit", 1]],
        "reference": None,
        "description": None,
        "metadata": {},
    } | damage
    with pytest.raises(TypeError, match=r"^a stored posting document needs a list of entries"):
        posting_from_document(document)
