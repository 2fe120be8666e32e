"""Ledgers are tenants: accounts, posting requests, transactions and entries name their ledger.

Every row written before this revision is in the `default` ledger (the column's default).
The database holds the tenancy a second time, beside the engine: an entry carries its
transaction's ledger (foreign key to transactions (position, ledger)) and its account must
be in that ledger (foreign key to accounts (id, currency, ledger), which replaces the one
on (id, currency)). transactions (ledger, position) is the target of the entries' key and
serves a ledger's list of transactions. `accounts` gets no index leading with `ledger`: the
key's check, once per applied entry, could be planned on it (see `store/tables.py`).

PostgreSQL adds the columns without rewriting the tables (a constant default) and
validates the two keys over the existing entries. SQLite rebuilds `accounts` and `entries`
(a constraint cannot be changed in place there).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

DEFAULT_LEDGER = "default"
TABLES = ("accounts", "posting_requests", "transactions", "entries")


def _ledger_column() -> sa.Column:
    return sa.Column("ledger", sa.String(128), nullable=False, server_default=DEFAULT_LEDGER)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _upgrade_postgresql()
        return
    for table in ("posting_requests", "transactions"):
        op.add_column(table, _ledger_column())
    op.create_index(
        op.f("uq_transactions_ledger_position"),
        "transactions",
        ["ledger", "position"],
        unique=True,
    )
    with op.batch_alter_table("accounts", recreate="always") as batch:
        batch.add_column(_ledger_column())
        batch.drop_constraint(op.f("uq_accounts_id_currency"), type_="unique")
        batch.create_unique_constraint(
            op.f("uq_accounts_id_currency_ledger"), ["id", "currency", "ledger"]
        )
    with op.batch_alter_table("entries", recreate="always") as batch:
        batch.add_column(_ledger_column())
        batch.drop_constraint(op.f("fk_entries_account_id_currency"), type_="foreignkey")
        batch.drop_constraint(op.f("fk_entries_transaction_position"), type_="foreignkey")
        batch.create_foreign_key(
            op.f("fk_entries_transaction_position_ledger"),
            "transactions",
            ["transaction_position", "ledger"],
            ["position", "ledger"],
        )
        batch.create_foreign_key(
            op.f("fk_entries_account_id_currency_ledger"),
            "accounts",
            ["account_id", "currency", "ledger"],
            ["id", "currency", "ledger"],
        )


def _upgrade_postgresql() -> None:
    for table in TABLES:
        op.add_column(table, _ledger_column())
    op.create_unique_constraint(
        op.f("uq_accounts_id_currency_ledger"), "accounts", ["id", "currency", "ledger"]
    )
    op.create_unique_constraint(
        op.f("uq_transactions_ledger_position"), "transactions", ["ledger", "position"]
    )
    op.drop_constraint(op.f("fk_entries_account_id_currency"), "entries", type_="foreignkey")
    op.drop_constraint(op.f("fk_entries_transaction_position"), "entries", type_="foreignkey")
    op.create_foreign_key(
        op.f("fk_entries_transaction_position_ledger"),
        "entries",
        "transactions",
        ["transaction_position", "ledger"],
        ["position", "ledger"],
    )
    op.create_foreign_key(
        op.f("fk_entries_account_id_currency_ledger"),
        "entries",
        "accounts",
        ["account_id", "currency", "ledger"],
        ["id", "currency", "ledger"],
    )
    op.drop_constraint(op.f("uq_accounts_id_currency"), "accounts", type_="unique")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_unique_constraint(op.f("uq_accounts_id_currency"), "accounts", ["id", "currency"])
        op.drop_constraint(
            op.f("fk_entries_account_id_currency_ledger"), "entries", type_="foreignkey"
        )
        op.drop_constraint(
            op.f("fk_entries_transaction_position_ledger"), "entries", type_="foreignkey"
        )
        op.create_foreign_key(
            op.f("fk_entries_account_id_currency"),
            "entries",
            "accounts",
            ["account_id", "currency"],
            ["id", "currency"],
        )
        op.create_foreign_key(
            op.f("fk_entries_transaction_position"),
            "entries",
            "transactions",
            ["transaction_position"],
            ["position"],
        )
        op.drop_constraint(op.f("uq_transactions_ledger_position"), "transactions", type_="unique")
        op.drop_constraint(op.f("uq_accounts_id_currency_ledger"), "accounts", type_="unique")
        for table in reversed(TABLES):
            op.drop_column(table, "ledger")
        return
    with op.batch_alter_table("entries", recreate="always") as batch:
        batch.drop_constraint(op.f("fk_entries_account_id_currency_ledger"), type_="foreignkey")
        batch.drop_constraint(op.f("fk_entries_transaction_position_ledger"), type_="foreignkey")
        batch.drop_column("ledger")
        batch.create_foreign_key(
            op.f("fk_entries_account_id_currency"),
            "accounts",
            ["account_id", "currency"],
            ["id", "currency"],
        )
        batch.create_foreign_key(
            op.f("fk_entries_transaction_position"),
            "transactions",
            ["transaction_position"],
            ["position"],
        )
    with op.batch_alter_table("accounts", recreate="always") as batch:
        batch.drop_constraint(op.f("uq_accounts_id_currency_ledger"), type_="unique")
        batch.create_unique_constraint(op.f("uq_accounts_id_currency"), ["id", "currency"])
        batch.drop_column("ledger")
    op.drop_index(op.f("uq_transactions_ledger_position"), "transactions")
    for table in ("transactions", "posting_requests"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("ledger")
