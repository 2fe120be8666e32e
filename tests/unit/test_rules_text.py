"""Text fields of a posting: what PostgreSQL can store as UTF-8, and nothing else.

A reference, a description and every metadata key and value end up in TEXT columns and in
the canonical JSON document. PostgreSQL refuses NUL characters in TEXT and a lone UTF-16
surrogate has no UTF-8 encoding, so both are refused up front with `invalid_text` and a
detail that names the field, rather than failing later inside the database transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger_core.errors import InvalidText
from ledger_core.model import AccountId, Direction, Posting
from ledger_core.rules import RawEntry, build_posting

CASH = AccountId(uuid.UUID("00000000-0000-4000-8000-000000000001"))
WALLET = AccountId(uuid.UUID("00000000-0000-4000-8000-000000000002"))

TEXT_SETTINGS = settings(max_examples=60, deadline=None)

# Any text that UTF-8 can encode (so no lone surrogates) and that holds no NUL character.
storable_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)


def top_up(
    *,
    reference: str | None = None,
    description: str | None = None,
    metadata: Mapping[str, object] | None = None,
) -> Posting:
    """Bob tops up his wallet with 20.00 in cash."""
    return build_posting(
        idempotency_key="top-up-7",
        currency="USD",
        entries=[
            RawEntry(CASH, Direction.DEBIT, "20.00"),
            RawEntry(WALLET, Direction.CREDIT, "20"),
        ],
        reference=reference,
        description=description,
        metadata=metadata,
    )


def refusal_of(**fields: object) -> InvalidText:
    with pytest.raises(InvalidText) as raised:
        top_up(**fields)  # type: ignore[arg-type]
    assert raised.value.code == "invalid_text"
    return raised.value


# NUL characters


@pytest.mark.parametrize(
    ("fields", "detail"),
    [
        pytest.param(
            {"reference": "inv\x00oice 88"},
            "reference must not contain NUL characters",
            id="reference",
        ),
        pytest.param(
            {"description": "\x00"}, "description must not contain NUL characters", id="description"
        ),
        pytest.param(
            {"metadata": {"branch\x00": "north"}},
            "metadata key must not contain NUL characters",
            id="metadata-key",
        ),
        pytest.param(
            {"metadata": {"branch": "north\x00"}},
            "metadata value of 'branch' must not contain NUL characters",
            id="metadata-value",
        ),
    ],
)
def test_a_nul_character_is_refused_and_the_detail_names_the_field(
    fields: dict[str, object], detail: str
) -> None:
    assert refusal_of(**fields).detail == detail


# Lone surrogates: a JSON body may spell "\ud800" on its own, which UTF-8 cannot encode.


@pytest.mark.parametrize(
    ("fields", "detail"),
    [
        pytest.param(
            {"reference": "inv\ud800oice 88"}, "reference is not valid Unicode text", id="reference"
        ),
        pytest.param({"description": "\udfff"}, "description is not valid Unicode text", id="desc"),
        pytest.param(
            {"metadata": {"branch\udc80": "north"}},
            "metadata key is not valid Unicode text",
            id="metadata-key",
        ),
        pytest.param(
            {"metadata": {"branch": "north\ud83d"}},
            "metadata value of 'branch' is not valid Unicode text",
            id="metadata-value",
        ),
    ],
)
def test_a_lone_surrogate_is_refused_and_the_detail_names_the_field(
    fields: dict[str, object], detail: str
) -> None:
    assert refusal_of(**fields).detail == detail


def test_text_in_several_fields_is_checked_reference_first_then_description_then_metadata() -> None:
    every_field_bad = {
        "reference": "a\x00",
        "description": "b\x00",
        "metadata": {"c\x00": "d\x00"},
    }

    assert refusal_of(**every_field_bad).detail.startswith("reference ")
    del every_field_bad["reference"]
    assert refusal_of(**every_field_bad).detail.startswith("description ")
    del every_field_bad["description"]
    assert refusal_of(**every_field_bad).detail.startswith("metadata key ")


# What is accepted is stored exactly as written.


def test_unicode_text_that_utf8_can_encode_is_kept_as_written() -> None:
    posting = top_up(
        reference="Rechnung Nr. 88 \u2013 M\u00fcller",
        description="\u5496\u5561 \U0001f375 tea",
        metadata={"caf\u00e9": "cr\u00e8me br\u00fbl\u00e9e"},
    )

    assert posting.reference == "Rechnung Nr. 88 \u2013 M\u00fcller"
    assert posting.description == "\u5496\u5561 \U0001f375 tea"
    assert posting.metadata == {"caf\u00e9": "cr\u00e8me br\u00fbl\u00e9e"}


@TEXT_SETTINGS
@given(text=storable_text)
def test_any_storable_text_is_accepted_unchanged_in_every_field(text: str) -> None:
    posting = top_up(reference=text, description=text, metadata={"note": text})

    assert posting.reference == text
    assert posting.description == text
    assert posting.metadata == {"note": text}


@TEXT_SETTINGS
@given(text=storable_text, data=st.data())
def test_a_nul_anywhere_in_otherwise_storable_text_is_refused(
    text: str, data: st.DataObject
) -> None:
    at = data.draw(st.integers(min_value=0, max_value=len(text)), label="position")
    with_nul = text[:at] + "\x00" + text[at:]

    assert refusal_of(reference=with_nul).detail == "reference must not contain NUL characters"
    assert refusal_of(description=with_nul).detail == "description must not contain NUL characters"
    assert refusal_of(metadata={"note": with_nul}).detail == (
        "metadata value of 'note' must not contain NUL characters"
    )


@TEXT_SETTINGS
@given(
    text=storable_text,
    surrogate=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
    data=st.data(),
)
def test_a_lone_surrogate_anywhere_in_otherwise_storable_text_is_refused(
    text: str, surrogate: str, data: st.DataObject
) -> None:
    at = data.draw(st.integers(min_value=0, max_value=len(text)), label="position")
    with_surrogate = text[:at] + surrogate + text[at:]

    assert refusal_of(reference=with_surrogate).detail == "reference is not valid Unicode text"
    assert refusal_of(description=with_surrogate).detail == "description is not valid Unicode text"
