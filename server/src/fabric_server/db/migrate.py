"""Apply Alembic migrations programmatically (at start-up and by `fabric-server migrate`)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
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


@dataclass(frozen=True)
class MigrationStatus:
    """Where a database's schema stands against the migrations this version ships."""

    current: tuple[str, ...]  # the database's revision(s); empty: never migrated
    heads: tuple[str, ...]  # the newest revision(s) this version knows
    pending: tuple[str, ...]  # revisions `migrate` would apply, oldest first
    unknown: tuple[str, ...]  # revisions of the database this version does not know

    @property
    def up_to_date(self) -> bool:
        return not self.pending and not self.unknown


def _current_heads(connection: Connection) -> tuple[str, ...]:
    return tuple(MigrationContext.configure(connection).get_current_heads())


@contextlib.contextmanager
def _quiet_alembic() -> Iterator[None]:
    # Alembic announces its context at INFO: noise in a read-only comparison.
    logger = logging.getLogger("alembic.runtime.migration")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


async def migration_status(db: Database) -> MigrationStatus:
    """Compare the database's revision with this version's migrations (reads only)."""
    async with db.engine.connect() as conn:
        with _quiet_alembic():
            current = await conn.run_sync(_current_heads)
    script = ScriptDirectory.from_config(alembic_config())
    heads = tuple(script.get_heads())
    known = {revision.revision for revision in script.walk_revisions()}
    unknown = tuple(rev for rev in current if rev not in known)
    pending: tuple[str, ...] = ()
    if not unknown:
        ahead = script.iterate_revisions("heads", current[0] if current else "base")
        pending = tuple(reversed([revision.revision for revision in ahead]))
    return MigrationStatus(current=current, heads=heads, pending=pending, unknown=unknown)
