"""Autovacuum settings for the tables every posting rewrites.

Each applied posting leaves a dead version of its `posting_requests` row (the status
update cannot be HOT: `status` is in the queued index's predicate) and usually of two
`accounts` rows. With the default thresholds (20% of the table dead) a queue of millions
of requests would carry hundreds of thousands of dead entries in the queued index that
every batch and lag probe walks; these tables are vacuumed after 1% (requests) and 5%
(accounts) instead. PostgreSQL only acts on this when autovacuum is on (see README).

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "ALTER TABLE posting_requests SET (autovacuum_vacuum_scale_factor = 0.01,"
        " autovacuum_vacuum_insert_scale_factor = 0.01, autovacuum_analyze_scale_factor = 0.02)"
    )
    op.execute("ALTER TABLE accounts SET (autovacuum_vacuum_scale_factor = 0.05)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "ALTER TABLE posting_requests RESET (autovacuum_vacuum_scale_factor,"
        " autovacuum_vacuum_insert_scale_factor, autovacuum_analyze_scale_factor)"
    )
    op.execute("ALTER TABLE accounts RESET (autovacuum_vacuum_scale_factor)")
