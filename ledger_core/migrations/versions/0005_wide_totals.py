"""Account totals 38 digits wide, so that no history of postings can freeze an account.

Posted totals only grow. As BIGINT, an account whose debits or credits reached 2**63 - 1
(one posting of that size was enough) refused every later posting on that side with
`balance_overflow`, for good. Here they become wide enough that no history within the
largest amount of one entry reaches their bound (docs/ARCHITECTURE.md):
- PostgreSQL: NUMERIC(38, 0). The table is rewritten under an exclusive lock.
- SQLite, whose integers stop at 2**63 - 1 and whose NUMERIC affinity would round larger
  ones to doubles: text of exactly 38 digits, zero-padded (`store.tables.Total`), which
  sorts as its numbers do. The table is rebuilt, and a CHECK holds the form.

Downgrading refuses while any total is beyond BIGINT.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

DIGITS = 38
TOTALS = ("debits_posted", "credits_posted")
BIGINT_MAX = 2**63 - 1
# The CHECKs that compare the two totals. During the SQLite copy the totals are unpadded
# text, which compares wrongly ('5' > '10'), so they are put back only once padded.
FLAG_CHECKS = {
    "ck_accounts_debits_within_credits": "(flags & 1) = 0 OR debits_posted <= credits_posted",
    "ck_accounts_credits_within_debits": "(flags & 2) = 0 OR credits_posted <= debits_posted",
}
SQLITE_DIGITS_CHECK = (
    f"length(debits_posted) = {DIGITS} AND debits_posted NOT GLOB '*[^0-9]*'"
    f" AND length(credits_posted) = {DIGITS} AND credits_posted NOT GLOB '*[^0-9]*'"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE accounts"
            f" ALTER COLUMN debits_posted TYPE numeric({DIGITS}, 0),"
            f" ALTER COLUMN credits_posted TYPE numeric({DIGITS}, 0)"
        )
        return
    with op.batch_alter_table("accounts", recreate="always") as batch:
        for name in FLAG_CHECKS:
            batch.drop_constraint(op.f(name), type_="check")
        for column in TOTALS:
            batch.alter_column(
                column,
                type_=sa.String(DIGITS),
                existing_type=sa.BigInteger(),
                existing_nullable=False,
                server_default="0" * DIGITS,
            )
    op.execute(
        f"UPDATE accounts SET debits_posted = printf('%0{DIGITS}d', debits_posted),"
        f" credits_posted = printf('%0{DIGITS}d', credits_posted)"
    )
    with op.batch_alter_table("accounts", recreate="always") as batch:
        for name, condition in FLAG_CHECKS.items():
            batch.create_check_constraint(op.f(name), condition)
        batch.create_check_constraint(op.f("ck_accounts_totals_digits"), SQLITE_DIGITS_CHECK)


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    beyond = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT count(*) FROM accounts"
                " WHERE debits_posted > :bigint_max OR credits_posted > :bigint_max"
            ),
            {"bigint_max": BIGINT_MAX if postgresql else f"{BIGINT_MAX:0{DIGITS}d}"},
        )
        .scalar_one()
    )
    if beyond:
        raise RuntimeError(f"{beyond} accounts have totals beyond BIGINT; they cannot go back")
    if postgresql:
        op.execute(
            "ALTER TABLE accounts"
            " ALTER COLUMN debits_posted TYPE bigint,"
            " ALTER COLUMN credits_posted TYPE bigint"
        )
        return
    with op.batch_alter_table("accounts", recreate="always") as batch:
        batch.drop_constraint(op.f("ck_accounts_totals_digits"), type_="check")
        for column in TOTALS:
            batch.alter_column(
                column,
                type_=sa.BigInteger(),
                existing_type=sa.String(DIGITS),
                existing_nullable=False,
                server_default="0",
            )
