"""Schema migrations through Alembic, for PostgreSQL and for the embedded SQLite file."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

import ledger_core


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(ledger_core.__file__).parent / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_to_head(url: str) -> None:
    command.upgrade(alembic_config(url), "head")
