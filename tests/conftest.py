"""End-to-end fixtures: the SDK against a real server over a real database."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

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
    url = databases.create(request.param)
    yield url
    databases.drop(url)


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(fast_settings(database_url, tmp_path)) as live:
        yield live
