"""Helpers for tests and benchmarks: fresh databases and a real server on a free port.

Shipped with the package so the SDK's end-to-end tests and `bench/` use the same setup.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import threading
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

import asyncpg
import httpx
import uvicorn
from sqlalchemy.engine import make_url

from fabric_server.app import begin_shutdown, create_app
from fabric_server.db.database import Database
from fabric_server.db.migrate import migrate
from fabric_server.serving import FabricServer, connection_options
from fabric_server.settings import Settings, to_async_url


def fast_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    """Settings tuned for tests: quick polling, short leases, no waiting on backoff, and
    webhook deliveries restricted to loopback."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "data_dir": data_dir,
        "env": "development",
        "worker_poll_interval": 0.05,
        "heartbeat_seconds": 0.5,
        "lease_seconds": 5.0,
        "retry_base_seconds": 0.05,
        "retry_max_seconds": 0.2,
        "sse_poll_seconds": 0.05,
        "sse_keepalive_seconds": 15.0,
        # Cheap password hashing, and no per-address limits (many calls come from one IP).
        "argon2_time_cost": 1,
        "argon2_memory_kib": 8,
        "argon2_parallelism": 1,
        "auth_rate_limit": 0,
        # Mail goes to the outbox, where tests read it, in production mode too.
        "dev_outbox": True,
        # No real model provider, whatever the environment says: tests never leave the machine.
        "openai_api_key": None,
        "openai_base_url": None,
        "anthropic_api_key": None,
        # Even a key stored later (an organization secret) only ever reaches the discard port.
        "openai_default_base_url": "http://127.0.0.1:9/v1",
        "anthropic_base_url": "http://127.0.0.1:9",
        # Webhook deliveries never leave the machine in tests (fuzzed URLs included), and
        # retry at once.
        "webhook_allowed_networks": ["127.0.0.0/8", "::1/128"],
        "webhook_retry_schedule": [0.05, 0.1, 0.2],
        "webhook_dispatch_poll_seconds": 0.05,
        "webhook_timeout_seconds": 5.0,
        # The host name of the in-process test clients.
        "dev_allowed_hosts": ["fabric.test"],
        # Every success response is exactly what its route's declared model says.
        "check_responses": True,
    }
    values.update(overrides)
    return Settings(**values)


class TestDatabases:
    """Creates one migrated template per dialect, then cheap copies of it per test."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory: Path, postgres_url: str | None) -> None:
        self.directory = directory
        self.postgres_url = postgres_url
        self._templates: dict[str, str] = {}
        self._prefix = f"fabric_t{uuid.uuid4().hex[:8]}"

    def create(self, dialect: str) -> str:
        if dialect == "sqlite":
            template = self._template("sqlite")
            path = self.directory / f"{uuid.uuid4().hex}.db"
            shutil.copyfile(template, path)
            return f"sqlite:///{path}"
        if not self.postgres_url:
            raise RuntimeError("FABRIC_TEST_DATABASE_URL is not set")
        template = self._template("postgresql")
        name = f"{self._prefix}_{uuid.uuid4().hex[:10]}"
        self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self._pg_url(name)

    def drop(self, url: str) -> None:
        if url.startswith("sqlite"):
            path = Path(url.removeprefix("sqlite:///"))
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            return
        name = make_url(url).database
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        if "postgresql" in self._templates:
            self._admin(f'DROP DATABASE IF EXISTS "{self._templates["postgresql"]}" WITH (FORCE)')

    def _template(self, dialect: str) -> str:
        if dialect not in self._templates:
            if dialect == "sqlite":
                path = self.directory / "template.db"
                asyncio.run(_migrate(f"sqlite:///{path}"))
                self._templates[dialect] = str(path)
            else:
                name = f"{self._prefix}_template"
                self._admin(f'CREATE DATABASE "{name}"')
                asyncio.run(_migrate(self._pg_url(name)))
                self._templates[dialect] = name
        return self._templates[dialect]

    def _pg_url(self, database: str) -> str:
        assert self.postgres_url is not None
        return make_url(self.postgres_url).set(database=database).render_as_string(False)

    def _admin(self, sql: str) -> None:
        assert self.postgres_url is not None
        asyncio.run(_admin_sql(self.postgres_url, sql))


async def _admin_sql(url: str, sql: str) -> None:
    parsed = make_url(url)
    conn = await asyncpg.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        password=parsed.password,
        database=parsed.database or "postgres",
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _migrate(url: str) -> None:
    db = Database(to_async_url(url))
    try:
        await migrate(db)
    finally:
        await db.dispose()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer:
    """Runs the app under uvicorn in a background thread, on a free loopback port."""

    def __init__(self, settings: Settings, *, port: int | None = None) -> None:
        self.settings = settings
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(settings)
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            loop="asyncio",
            timeout_graceful_shutdown=5,
            **connection_options(settings),
        )
        app = self.app
        self._server = FabricServer(config, on_shutdown=lambda: begin_shutdown(app))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._server.started:
                return self
            if not self._thread.is_alive():
                raise RuntimeError("the server failed to start")
            time.sleep(0.02)
        raise RuntimeError("the server did not start within 20 s")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Shut the server down as a signal would, and wait for it (again: no effect)."""
        self._server.should_exit = True
        self._thread.join(timeout=20)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.base_url + path, **kwargs)
