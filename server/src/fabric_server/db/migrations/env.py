"""Alembic environment: runs on the connection handed over by `fabric_server.db.migrate`."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from fabric_server.db.all_models import Base

config = context.config
connection: Connection | None = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `fabric-server migrate`, not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
