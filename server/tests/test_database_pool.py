"""PostgreSQL pool: a connection the server closed while it sat idle is replaced, not used."""

from __future__ import annotations

import os

import asyncpg
import pytest
from sqlalchemy import text

from fabric_server.db import database
from fabric_server.db.database import Database
from fabric_server.settings import to_async_url

PG_URL = os.environ.get("FABRIC_TEST_DATABASE_URL")

pytestmark = pytest.mark.skipif(PG_URL is None, reason="needs PostgreSQL")


async def test_an_idle_connection_closed_by_the_server_is_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert PG_URL is not None
    db = Database(to_async_url(PG_URL))
    try:
        async with db.engine.connect() as conn:
            first = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        admin = await asyncpg.connect(PG_URL)
        try:
            await admin.execute("SELECT pg_terminate_backend($1)", first)
        finally:
            await admin.close()
        monkeypatch.setattr(database, "IDLE_PING_SECONDS", -1.0)  # every checkout pings
        async with db.engine.connect() as conn:
            second = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert second != first
    finally:
        await db.dispose()
