"""Check that transactions balance once per INSERT statement instead of once per entry.

The deferred row trigger of 0001 ran a sum query for every entry at commit (about half of
PostgreSQL's work per posting in a batch). This statement-level trigger sees the inserted
entries as a transition table and checks, in one query, that every transaction they touch
sums to zero over all its entries. It is stricter in time (a statement may not leave a
transaction unbalanced, even for a moment) and the ledger writes every transaction's
entries in one statement.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UPGRADE = [
    "DROP TRIGGER entries_balanced ON entries",
    "DROP FUNCTION ledgerflow_check_transaction_balanced()",
    """
    CREATE FUNCTION ledgerflow_check_transactions_balanced() RETURNS trigger
    LANGUAGE plpgsql AS $$
    DECLARE
        unbalanced record;
    BEGIN
        SELECT e.transaction_position AS position,
               sum(CASE e.direction WHEN 'debit' THEN e.amount_minor
                                    ELSE -e.amount_minor END) AS total
          INTO unbalanced
          FROM entries AS e
         WHERE e.transaction_position IN (SELECT transaction_position FROM inserted_entries)
         GROUP BY e.transaction_position
        HAVING sum(CASE e.direction WHEN 'debit' THEN e.amount_minor
                                    ELSE -e.amount_minor END) <> 0
         LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'entries of transaction % sum to % instead of 0',
                unbalanced.position, unbalanced.total
                USING ERRCODE = '23514';
        END IF;
        RETURN NULL;
    END;
    $$
    """,
    """
    CREATE TRIGGER entries_balanced AFTER INSERT ON entries
    REFERENCING NEW TABLE AS inserted_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledgerflow_check_transactions_balanced()
    """,
]

DOWNGRADE = [
    "DROP TRIGGER entries_balanced ON entries",
    "DROP FUNCTION ledgerflow_check_transactions_balanced()",
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
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in UPGRADE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in DOWNGRADE:
            op.execute(statement)
