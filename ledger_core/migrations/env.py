"""Alembic environment: runs migrations on the connection or URL `ledgerflow migrate` gives."""

from alembic import context
from sqlalchemy import create_engine

from ledger_core.store.tables import metadata

config = context.config
connection = config.attributes.get("connection")

if connection is not None:
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as fresh:
        context.configure(connection=fresh, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
