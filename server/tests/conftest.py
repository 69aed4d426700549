"""Test fixtures: a real database per test (SQLite always, PostgreSQL when configured)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fake_llm import FakeLLM

from fabric_server.app import create_app
from fabric_server.services import Services, build_services
from fabric_server.settings import Settings
from fabric_server.testing import LiveServer, TestDatabases, fast_settings

PG_URL = os.environ.get("FABRIC_TEST_DATABASE_URL")
DIALECTS = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestDatabases]:
    dbs = TestDatabases(tmp_path_factory.mktemp("db"), PG_URL)
    yield dbs
    dbs.close()


@pytest.fixture(params=DIALECTS)
def database_url(request: pytest.FixtureRequest, databases: TestDatabases) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    url = databases.create(request.param)
    yield url
    databases.drop(url)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return fast_settings(database_url, tmp_path)


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    built = build_services(settings)
    yield built
    await built.db.dispose()


@pytest.fixture
async def client(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """The ASGI app in-process (lifespan run: migrations, seed, in-process worker)."""
    app = create_app(services=services)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://fabric.test") as c:
            yield c


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    """A real uvicorn server on a free loopback port (for SSE and the sync SDK)."""
    with LiveServer(settings) as server:
        yield server


@pytest.fixture(scope="session")
def fake_llm_server() -> Iterator[FakeLLM]:
    server = FakeLLM().start()
    yield server
    server.stop()


@pytest.fixture
def llm(fake_llm_server: FakeLLM) -> FakeLLM:
    """A loopback server speaking the OpenAI and Anthropic APIs, reset for each test."""
    fake_llm_server.reset()
    return fake_llm_server
