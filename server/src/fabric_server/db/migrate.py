"""Apply Alembic migrations programmatically (at start-up and by `fabric-server migrate`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection

from fabric_server.db.database import Database

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Serialises concurrent start-ups (API replicas and workers) on one PostgreSQL database.
_MIGRATION_LOCK_KEY = 7_146_204_001


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
    command.upgrade(alembic_config(connection), "head")


async def migrate(db: Database) -> None:
    """Bring the database schema to the newest revision."""
    async with db.engine.begin() as conn:
        await conn.run_sync(_upgrade)
