"""Sign-in floods: failures counted per email from any address and per address for any
email (in the database, so every process shares them), password hashing queued in a
bounded line, and X-Forwarded-For believed from configured proxies only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from auth_helpers import login, signup
from server_helpers import assert_error

from fabric_server.app import create_app
from fabric_server.auth.passwords import Passwords
from fabric_server.errors import RateLimited
from fabric_server.services import build_services
from fabric_server.settings import Settings
from fabric_server.testing import LiveServer, fast_settings


@asynccontextmanager
async def processes(settings: Settings, count: int) -> AsyncIterator[list[Any]]:
    """`count` apps on one database (as API processes are), each with its own caches; yields
    a factory of clients `(process, address)`."""
    async with AsyncExitStack() as stack:
        apps = []
        for _ in range(count):
            services = build_services(settings)
            stack.push_async_callback(services.db.dispose)
            app = create_app(services=services)
            await stack.enter_async_context(app.router.lifespan_context(app))
            apps.append(app)

        async def client(process: int, address: str) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=apps[process], client=(address, 40000))
            made = httpx.AsyncClient(transport=transport, base_url="http://fabric.test")
            return await stack.enter_async_context(made)

        yield [client]


async def test_one_email_tried_from_many_addresses_is_locked_everywhere(
    database_url: str, tmp_path: Path
) -> None:
    settings = fast_settings(
        database_url, tmp_path, login_max_failures=100, login_account_max_failures=3
    )
    async with processes(settings, 2) as (client,):
        owner = await client(0, "192.0.2.1")
        await signup(owner, "target@example.com")
        for index in range(3):  # three addresses, spread over two processes
            guesser = await client(index % 2, f"198.51.100.{index + 1}")
            response = await login(guesser, "target@example.com", "guess")
            # The third failure locks the email (and says so).
            assert_error(
                response,
                429 if index == 2 else 401,
                "rate_limited" if index == 2 else "unauthorized",
            )
        fresh = await client(1, "198.51.100.99")
        locked = assert_error(
            await login(fresh, "target@example.com", "guess"), 429, "rate_limited"
        )
        assert locked["error"]["message"]
        # Other accounts are not affected.
        assert_error(await login(fresh, "other@example.com", "guess"), 401, "unauthorized")


async def test_one_address_trying_many_emails_is_locked(database_url: str, tmp_path: Path) -> None:
    settings = fast_settings(
        database_url, tmp_path, login_max_failures=100, login_address_max_failures=3
    )
    async with processes(settings, 2) as (client,):
        for index in range(3):
            guesser = await client(index % 2, "198.51.100.7")
            response = await login(guesser, f"user{index}@example.com", "guess")
            # The third failure locks the address (and says so).
            assert_error(
                response,
                429 if index == 2 else 401,
                "rate_limited" if index == 2 else "unauthorized",
            )
        guesser = await client(1, "198.51.100.7")
        assert_error(await login(guesser, "user9@example.com", "guess"), 429, "rate_limited")
        elsewhere = await client(0, "203.0.113.9")
        assert_error(await login(elsewhere, "user9@example.com", "guess"), 401, "unauthorized")


async def test_password_hashing_runs_a_bounded_number_at_once_and_queues_the_rest() -> None:
    passwords = Passwords(
        time_cost=3, memory_kib=8192, parallelism=1, min_length=8, concurrency=1, queue=1
    )
    results = await asyncio.gather(
        *(passwords.hash("correct horse battery") for _ in range(3)), return_exceptions=True
    )
    refused = [r for r in results if isinstance(r, RateLimited)]
    assert len(refused) == 1  # one hashing, one waiting its turn, the third refused at once
    assert sum(isinstance(r, str) for r in results) == 2
    assert await passwords.verify(str(results[0]), "correct horse battery")


@pytest.mark.parametrize("trusted", [False, True])
def test_forwarded_addresses_are_believed_from_configured_proxies_only(
    database_url: str, tmp_path: Path, trusted: bool
) -> None:
    proxies = ["127.0.0.1/32"] if trusted else []
    settings = fast_settings(database_url, tmp_path, auth_rate_limit=3, trusted_proxies=proxies)
    with LiveServer(settings) as server, httpx.Client(base_url=server.base_url) as client:
        statuses = []
        for index in range(5):
            response = client.post(
                "/v1/auth/login",
                json={"email": "x@example.com", "password": "guess-guess"},
                headers={"x-forwarded-for": f"198.51.100.{index + 1}"},
            )
            statuses.append(response.status_code)
    # Untrusted: every request comes from 127.0.0.1, whatever it claims, and meets the limit.
    assert statuses == ([401] * 5 if trusted else [401, 401, 401, 429, 429])
