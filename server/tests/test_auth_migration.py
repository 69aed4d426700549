"""Migration 0002 (accounts) applies to a database holding users, and rolls back cleanly."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from fabric_server.db.database import Database
from fabric_server.db.migrate import alembic_config, migrate
from fabric_server.settings import to_async_url

AUTH_TABLES = {"auth_sessions", "auth_refresh_tokens", "auth_one_time_tokens", "social_identities"}


def _schema(connection: Connection) -> tuple[set[str], set[str]]:
    inspector = inspect(connection)
    users = {column["name"] for column in inspector.get_columns("users")}
    return set(inspector.get_table_names()), users


async def test_accounts_migration_round_trip(database_url: str) -> None:
    db = Database(to_async_url(database_url))
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0001"))
            tables, users = await conn.run_sync(_schema)
            assert not AUTH_TABLES & tables
            assert "password_hash" not in users
            await conn.execute(
                text(
                    "INSERT INTO users (id, email, email_verified, created_at, updated_at) "
                    "VALUES ('u1', 'old@example.com', false, CURRENT_TIMESTAMP, "
                    "CURRENT_TIMESTAMP)"
                )
            )
        await migrate(db)
        async with db.engine.connect() as conn:
            tables, users = await conn.run_sync(_schema)
            failed = await conn.scalar(text("SELECT failed_logins FROM users WHERE id = 'u1'"))
        assert tables >= AUTH_TABLES
        assert {"password_hash", "failed_logins", "locked_until", "last_login_at"} <= users
        assert failed == 0  # existing users get the column's default
    finally:
        await db.dispose()
