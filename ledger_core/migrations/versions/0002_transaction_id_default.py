"""PostgreSQL generates transaction ids (gen_random_uuid), so a batch insert need not send them.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("transactions", "id", server_default=sa.text("gen_random_uuid()"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("transactions", "id", server_default=None)
