"""Migration 0004 (tenancy) applies on top of 0002 and rolls back cleanly."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from fabric_server.db.database import Database
from fabric_server.db.migrate import alembic_config, migrate
from fabric_server.settings import to_async_url

TENANCY_TABLES = {
    "teams",
    "team_members",
    "invitations",
    "permission_grants",
    "api_keys",
    "org_secrets",
}


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_tenancy_migration_round_trip(database_url: str) -> None:
    db = Database(to_async_url(database_url))
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0002"))
            tables = await conn.run_sync(_tables)
        assert not TENANCY_TABLES & tables
        assert {"organizations", "memberships", "users"} <= tables
        await migrate(db)
        async with db.engine.connect() as conn:
            assert await conn.run_sync(_tables) >= TENANCY_TABLES
    finally:
        await db.dispose()
