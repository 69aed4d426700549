"""Apply Alembic migrations programmatically (at start-up and by `fabric-server migrate`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection

from fabric_server.db.database import Database
from fabric_server.secrets.crypto import SecretCipher

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Serialises concurrent start-ups (API replicas and workers) on one PostgreSQL database.
_MIGRATION_LOCK_KEY = 7_146_204_001


def alembic_config(
    connection: Connection | None = None, cipher: SecretCipher | None = None
) -> Config:
    """The Alembic configuration; migrations read `connection` and `cipher` (the server's
    master key, for data migrations that seal values) from its attributes."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    cfg.attributes["cipher"] = cipher
    return cfg


def _apply(
    connection: Connection, step: Callable[[Config], None], cipher: SecretCipher | None
) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
    before = MigrationContext.configure(connection).get_current_heads()
    step(alembic_config(connection, cipher))
    changed = MigrationContext.configure(connection).get_current_heads() != before
    if changed and connection.dialect.name == "sqlite":
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
        if broken:
            raise RuntimeError(f"migrations left rows with dangling foreign keys: {broken[:5]}")


def _sqlite_foreign_keys(connection: Connection, on: bool) -> None:
    # Through the driver: SQLAlchemy would open a transaction first, where the pragma is a no-op.
    cursor = connection.connection.cursor()
    try:
        cursor.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    finally:
        cursor.close()


async def _run(db: Database, step: Callable[[Config], None], cipher: SecretCipher | None) -> None:
    async with db.engine.connect() as conn:
        if db.is_sqlite:
            # SQLite alters a table by copying it, dropping the old one and renaming the copy.
            # With foreign keys on, that drop would cascade into every table that refers to
            # it, so they stay off meanwhile and are checked before the commit (SQLite's own
            # procedure for ALTER TABLE).
            await conn.run_sync(_sqlite_foreign_keys, False)
        try:
            async with conn.begin():
                await conn.run_sync(_apply, step, cipher)
        finally:
            if db.is_sqlite:
                await conn.run_sync(_sqlite_foreign_keys, True)


async def migrate(db: Database, *, cipher: SecretCipher | None = None) -> None:
    """Bring the database schema to the newest revision.

    `cipher` lets data migrations seal values that older revisions stored in clear; without
    it such a migration refuses to run when there are rows to seal.
    """
    await _run(db, lambda cfg: command.upgrade(cfg, "head"), cipher)


async def downgrade(db: Database, revision: str, *, cipher: SecretCipher | None = None) -> None:
    """Take the schema back to `revision` (for tests and emergencies; data may be lost)."""
    await _run(db, lambda cfg: command.downgrade(cfg, revision), cipher)
