"""Initial schema: accounts, intake of posting requests, transactions, entries.

On PostgreSQL it also installs the invariants the database holds by trigger: a deferred
constraint trigger that every transaction's entries sum to zero (SQLSTATE 23514), and
triggers that refuse UPDATE and DELETE of entries and transactions.

Revision ID: 0001
Revises: 
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None

POSTGRESQL_INVARIANTS = [
    """
    CREATE FUNCTION ledgerflow_check_transaction_balanced() RETURNS trigger
    LANGUAGE plpgsql AS $$
    DECLARE
        total numeric;
    BEGIN
        SELECT coalesce(sum(CASE direction WHEN 'debit' THEN amount_minor
                                           ELSE -amount_minor END), 0)
          INTO total
          FROM entries
         WHERE transaction_position = NEW.transaction_position;
        IF total <> 0 THEN
            RAISE EXCEPTION 'entries of transaction % sum to % instead of 0',
                NEW.transaction_position, total
                USING ERRCODE = '23514';
        END IF;
        RETURN NULL;
    END;
    $$
    """,
    """
    CREATE CONSTRAINT TRIGGER entries_balanced
    AFTER INSERT ON entries
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledgerflow_check_transaction_balanced()
    """,
    """
    CREATE FUNCTION ledgerflow_refuse_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '% rows are never updated or deleted', TG_TABLE_NAME
            USING ERRCODE = '23514';
    END;
    $$
    """,
    """
    CREATE TRIGGER entries_immutable BEFORE UPDATE OR DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION ledgerflow_refuse_change()
    """,
    """
    CREATE TRIGGER transactions_immutable BEFORE UPDATE OR DELETE ON transactions
    FOR EACH ROW EXECUTE FUNCTION ledgerflow_refuse_change()
    """,
]

POSTGRESQL_INVARIANTS_DROP = [
    "DROP TRIGGER transactions_immutable ON transactions",
    "DROP TRIGGER entries_immutable ON entries",
    "DROP FUNCTION ledgerflow_refuse_change()",
    "DROP TRIGGER entries_balanced ON entries",
    "DROP FUNCTION ledgerflow_check_transaction_balanced()",
]


def upgrade() -> None:
    op.create_table('accounts',
    sa.Column('position', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('account_type', sa.String(length=16), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='active', nullable=False),
    sa.Column('flags', sa.SmallInteger(), server_default='0', nullable=False),
    sa.Column('debits_posted', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('credits_posted', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.CheckConstraint("account_type IN ('asset', 'liability', 'equity', 'revenue', 'expense')", name=op.f('ck_accounts_type')),
    sa.CheckConstraint("status IN ('active', 'inactive')", name=op.f('ck_accounts_status')),
    sa.CheckConstraint('(flags & 1) = 0 OR debits_posted <= credits_posted', name=op.f('ck_accounts_debits_within_credits')),
    sa.CheckConstraint('(flags & 2) = 0 OR credits_posted <= debits_posted', name=op.f('ck_accounts_credits_within_debits')),
    sa.CheckConstraint('debits_posted >= 0 AND credits_posted >= 0', name=op.f('ck_accounts_totals_positive')),
    sa.CheckConstraint('flags >= 0 AND flags <= 3', name=op.f('ck_accounts_flags_known')),
    sa.PrimaryKeyConstraint('position', name=op.f('pk_accounts')),
    sa.UniqueConstraint('id', 'currency', name=op.f('uq_accounts_id_currency')),
    sa.UniqueConstraint('id', name=op.f('uq_accounts_id'))
    )
    op.create_table('posting_requests',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('client_id', sa.String(length=128), nullable=False),
    sa.Column('idempotency_key', sa.String(length=128), nullable=False),
    sa.Column('body_hash', sa.String(length=64), nullable=False),
    sa.Column('partition', sa.SmallInteger(), nullable=False),
    sa.Column('document', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='queued', nullable=False),
    sa.Column('error_code', sa.String(length=64), nullable=True),
    sa.Column('error_detail', sa.Text(), nullable=True),
    sa.Column('accepted_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("(status = 'queued') = (finished_at IS NULL)", name=op.f('ck_posting_requests_finished_when_final')),
    sa.CheckConstraint("status IN ('queued', 'posted', 'rejected', 'failed')", name=op.f('ck_posting_requests_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_posting_requests')),
    sa.UniqueConstraint('client_id', 'idempotency_key', name=op.f('uq_posting_requests_client_id_idempotency_key'))
    )
    op.create_index('ix_posting_requests_queued', 'posting_requests', ['partition', 'id'], unique=False, postgresql_where=sa.text("status = 'queued'"), sqlite_where=sa.text("status = 'queued'"))
    op.create_table('transactions',
    sa.Column('position', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('request_id', sa.BigInteger(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=128), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('reference', sa.String(length=128), nullable=True),
    sa.Column('description', sa.String(length=1024), nullable=True),
    sa.Column('metadata', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('posted_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['posting_requests.id'], name=op.f('fk_transactions_request_id')),
    sa.PrimaryKeyConstraint('position', name=op.f('pk_transactions')),
    sa.UniqueConstraint('id', name=op.f('uq_transactions_id')),
    sa.UniqueConstraint('request_id', name=op.f('uq_transactions_request_id'))
    )
    op.create_table('entries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('transaction_position', sa.BigInteger(), nullable=False),
    sa.Column('account_id', sa.Uuid(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('direction', sa.String(length=6), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.CheckConstraint("direction IN ('debit', 'credit')", name=op.f('ck_entries_direction')),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_entries_amount_positive')),
    sa.ForeignKeyConstraint(['account_id', 'currency'], ['accounts.id', 'accounts.currency'], name=op.f('fk_entries_account_id_currency')),
    sa.ForeignKeyConstraint(['transaction_position'], ['transactions.position'], name=op.f('fk_entries_transaction_position')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_entries'))
    )
    op.create_index('ix_entries_account_transaction', 'entries', ['account_id', 'transaction_position'], unique=False)
    op.create_index('ix_entries_transaction', 'entries', ['transaction_position'], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRESQL_INVARIANTS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRESQL_INVARIANTS_DROP:
            op.execute(statement)
    op.drop_index('ix_entries_transaction', table_name='entries')
    op.drop_index('ix_entries_account_transaction', table_name='entries')
    op.drop_table('entries')
    op.drop_table('transactions')
    op.drop_index('ix_posting_requests_queued', table_name='posting_requests', postgresql_where=sa.text("status = 'queued'"), sqlite_where=sa.text("status = 'queued'"))
    op.drop_table('posting_requests')
    op.drop_table('accounts')
