"""The schema comes only from migrations, and the migrations match the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from fabric_server.db.all_models import Base
from fabric_server.db.database import Database
from fabric_server.db.migrate import migrate
from fabric_server.settings import to_async_url


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_migrations_match_the_models(database_url: str) -> None:
    db = Database(to_async_url(database_url))
    try:
        await migrate(db)  # idempotent: already at head
        async with db.engine.connect() as conn:
            diff = await conn.run_sync(_diff)
    finally:
        await db.dispose()
    assert diff == []
