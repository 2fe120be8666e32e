"""PostgreSQL holds the ledger's invariants a second time, whatever the code above it does."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from runtime.context import Runtime


def _sqlstate(error: DBAPIError) -> str | None:
    return getattr(error.orig, "sqlstate", None)


@pytest.fixture
def seeded(runtime: Runtime) -> tuple[uuid.UUID, uuid.UUID, int]:
    """Two USD accounts, one accepted request and its posted transaction with balanced entries."""
    a, b = uuid.uuid4(), uuid.uuid4()
    with runtime.database.engine.begin() as connection:
        for account_id in (a, b):
            connection.execute(
                text(
                    "INSERT INTO accounts (id, name, account_type, currency) "
                    "VALUES (:id, 'x', 'asset', 'USD')"
                ),
                {"id": account_id},
            )
        position = _posted_transaction(connection, "k")
        _insert_entries(connection, position, [(a, "debit", 5), (b, "credit", 5)])
    return a, b, int(position)


def _posted_transaction(connection, key: str) -> int:  # type: ignore[no-untyped-def]
    """A posted request under `key` and its transaction row; returns the transaction's
    position."""
    request_id = connection.execute(
        text(
            "INSERT INTO posting_requests (client_id, idempotency_key, body_hash, partition, "
            "document, status, finished_at) VALUES ('c', :key, 'h', 0, '{}', 'posted', now()) "
            "RETURNING id"
        ),
        {"key": key},
    ).scalar_one()
    position = connection.execute(
        text(
            "INSERT INTO transactions (id, request_id, idempotency_key, currency, metadata) "
            "VALUES (:id, :request, :key, 'USD', '{}') RETURNING position"
        ),
        {"id": uuid.uuid4(), "request": request_id, "key": key},
    ).scalar_one()
    return int(position)


def _insert_entries(connection, position, legs) -> None:  # type: ignore[no-untyped-def]
    """All `legs` in one INSERT statement, as the ledger writes a transaction's entries."""
    values = ", ".join(f"(:p, :a{i}, 'USD', :d{i}, :m{i})" for i in range(len(legs)))
    parameters = {"p": position}
    for i, (account_id, direction, amount) in enumerate(legs):
        parameters |= {f"a{i}": account_id, f"d{i}": direction, f"m{i}": amount}
    connection.execute(
        text(
            "INSERT INTO entries (transaction_position, account_id, currency, direction, "
            f"amount_minor) VALUES {values}"
        ),
        parameters,
    )


def test_an_entry_that_unbalances_a_posted_transaction_fails_at_commit_with_23514(
    runtime: Runtime, seeded: tuple[uuid.UUID, uuid.UUID, int]
) -> None:
    a, _b, position = seeded
    with pytest.raises(DBAPIError) as raised, runtime.database.engine.begin() as connection:
        _insert_entries(connection, position, [(a, "debit", 3)])
    assert _sqlstate(raised.value) == "23514"


def test_unbalanced_entries_of_a_new_transaction_fail_at_commit_with_23514(
    runtime: Runtime, seeded: tuple[uuid.UUID, uuid.UUID, int]
) -> None:
    a, b, _position = seeded
    with pytest.raises(DBAPIError) as raised, runtime.database.engine.begin() as connection:
        position = _posted_transaction(connection, "k2")
        _insert_entries(connection, position, [(a, "debit", 5), (b, "credit", 4)])
    assert _sqlstate(raised.value) == "23514"
    assert "sum to 1 instead of 0" in str(raised.value)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE entries SET amount_minor = amount_minor + 1",
        "DELETE FROM entries",
        "UPDATE transactions SET currency = 'EUR'",
        "DELETE FROM transactions",
    ],
)
def test_entries_and_transactions_are_never_changed(
    runtime: Runtime, seeded: tuple[uuid.UUID, uuid.UUID, int], statement: str
) -> None:
    with pytest.raises(DBAPIError) as raised, runtime.database.engine.begin() as connection:
        connection.execute(text(statement))
    assert _sqlstate(raised.value) == "23514"


def test_amounts_must_be_positive(
    runtime: Runtime, seeded: tuple[uuid.UUID, uuid.UUID, int]
) -> None:
    a, b, position = seeded
    with pytest.raises(DBAPIError) as raised, runtime.database.engine.begin() as connection:
        _insert_entries(connection, position, [(a, "debit", 0), (b, "credit", 0)])
    assert _sqlstate(raised.value) == "23514"


def test_entry_currency_must_be_its_accounts(
    runtime: Runtime, seeded: tuple[uuid.UUID, uuid.UUID, int]
) -> None:
    a, _b, position = seeded
    with pytest.raises(DBAPIError) as raised, runtime.database.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO entries (transaction_position, account_id, currency, direction, "
                "amount_minor) VALUES (:p, :a, 'EUR', 'debit', 1)"
            ),
            {"p": position, "a": a},
        )
    assert _sqlstate(raised.value) == "23503"


@pytest.mark.parametrize("entry_ledger", ["default", "other"])
def test_an_entry_names_only_accounts_of_its_transactions_ledger(
    runtime: Runtime, seeded: tuple[uuid.UUID, uuid.UUID, int], entry_ledger: str
) -> None:
    """The seeded transaction is in `default`; an account of ledger `other` cannot be one of
    its entries, whichever ledger the entry claims (its account's key, or its
    transaction's)."""
    _a, b, position = seeded
    elsewhere = uuid.uuid4()
    with runtime.database.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO accounts (id, name, account_type, currency, ledger) "
                "VALUES (:id, 'x', 'asset', 'USD', 'other')"
            ),
            {"id": elsewhere},
        )
    with pytest.raises(DBAPIError) as raised, runtime.database.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO entries (transaction_position, account_id, currency, direction, "
                "amount_minor, ledger) VALUES (:p, :a, 'USD', 'debit', 1, :ledger), "
                "(:p, :b, 'USD', 'credit', 1, 'default')"
            ),
            {"p": position, "a": elsewhere, "b": b, "ledger": entry_ledger},
        )
    assert _sqlstate(raised.value) == "23503"


def test_account_flags_hold_in_the_table(runtime: Runtime) -> None:
    with pytest.raises(DBAPIError) as raised, runtime.database.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO accounts (id, name, account_type, currency, flags, debits_posted) "
                "VALUES (:id, 'x', 'liability', 'USD', 1, 5)"
            ),
            {"id": uuid.uuid4()},
        )
    assert _sqlstate(raised.value) == "23514"


def test_idempotency_key_is_unique_per_client(
    runtime: Runtime, seeded: tuple[uuid.UUID, uuid.UUID, int]
) -> None:
    with pytest.raises(DBAPIError) as raised, runtime.database.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO posting_requests (client_id, idempotency_key, body_hash, partition, "
                "document) VALUES ('c', 'k', 'other', 0, '{}')"
            )
        )
    assert _sqlstate(raised.value) == "23505"


def test_one_transaction_per_request(
    runtime: Runtime, seeded: tuple[uuid.UUID, uuid.UUID, int]
) -> None:
    with pytest.raises(DBAPIError) as raised, runtime.database.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO transactions (id, request_id, idempotency_key, currency, metadata) "
                "SELECT :id, request_id, 'k', 'USD', '{}' FROM transactions"
            ),
            {"id": uuid.uuid4()},
        )
    assert _sqlstate(raised.value) == "23505"
