"""Brute-force protection: the account lockout and the per-address rate limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from auth_helpers import ManualClock, app_client, auth_events, login, outbox, signup, token_in
from server_helpers import assert_error

from fabric_server.auth.ratelimit import SlidingWindowLimiter
from fabric_server.services import Services
from fabric_server.testing import fast_settings


async def test_five_failures_lock_the_account(
    client: httpx.AsyncClient, services: Services
) -> None:
    clock = ManualClock()
    services.auth.core.clock = clock
    await signup(client, "locked@example.com")
    for _ in range(4):
        assert_error(await login(client, "locked@example.com", "guess"), 401, "unauthorized")
    fifth = await login(client, "locked@example.com", "guess")
    body = assert_error(fifth, 429, "rate_limited")
    assert fifth.headers["retry-after"] == "900"
    assert "locked" in body["error"]["message"]

    # Even the right password is refused while the lock lasts; Retry-After counts down.
    clock.advance(minutes=10)
    during = await login(client, "locked@example.com")
    assert_error(during, 429, "rate_limited")
    assert during.headers["retry-after"] == "300"

    clock.advance(minutes=5, seconds=1)
    assert (await login(client, "locked@example.com")).status_code == 200
    kinds = [e.kind for e in await auth_events(services)]
    assert kinds.count("auth.locked") == 1
    assert kinds.count("auth.login.failed") == 6  # five guesses and one attempt while locked


async def test_a_success_resets_the_failure_count(
    client: httpx.AsyncClient, services: Services
) -> None:
    await signup(client, "reset-count@example.com")
    for _ in range(4):
        await login(client, "reset-count@example.com", "guess")
    assert (await login(client, "reset-count@example.com")).status_code == 200
    for _ in range(4):
        assert_error(await login(client, "reset-count@example.com", "guess"), 401, "unauthorized")


async def test_password_reset_lifts_the_lock(client: httpx.AsyncClient, services: Services) -> None:
    await signup(client, "unlock@example.com")
    for _ in range(5):
        await login(client, "unlock@example.com", "guess")
    assert_error(await login(client, "unlock@example.com"), 429, "rate_limited")
    await client.post("/v1/auth/forgot-password", json={"email": "unlock@example.com"})
    token = token_in(
        (await outbox(services, "unlock@example.com"))[0]["body"], "/v1/auth/reset-password"
    )
    await client.post(
        "/v1/auth/reset-password", json={"token": token, "new_password": "after-the-lock"}
    )
    assert (await login(client, "unlock@example.com", "after-the-lock")).status_code == 200


@pytest.fixture
async def limited(
    database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    settings = fast_settings(database_url, tmp_path, auth_rate_limit=3)
    async with app_client(settings) as pair:
        yield pair


async def test_per_address_rate_limit(limited: tuple[httpx.AsyncClient, Services]) -> None:
    client, services = limited
    clock = [1000.0]
    services.auth.core.limiter.clock = lambda: clock[0]
    for _ in range(3):
        assert_error(await login(client, "someone@example.com", "x"), 401, "unauthorized")
    clock[0] += 20
    limited_response = await login(client, "someone@example.com", "x")
    body = assert_error(limited_response, 429, "rate_limited")
    assert limited_response.headers["retry-after"] == "40"
    assert "Too many requests" in body["error"]["message"]
    # Each endpoint has its own budget.
    assert (
        await client.post("/v1/auth/magic-link", json={"email": "someone@example.com"})
    ).status_code == 202
    clock[0] += 40
    assert_error(await login(client, "someone@example.com", "x"), 401, "unauthorized")


async def test_mail_endpoints_are_limited_per_recipient(
    limited: tuple[httpx.AsyncClient, Services],
) -> None:
    client, services = limited
    services.auth.core.limiter.limit = 2
    for path in ("/v1/auth/magic-link", "/v1/auth/forgot-password"):
        response = await client.post(path, json={"email": "victim@example.com"})
        assert response.status_code == 202
    flooded = await client.post(
        "/v1/auth/resend-verification", json={"email": "victim@example.com"}
    )
    assert_error(flooded, 429, "rate_limited")


def test_sliding_window_limiter() -> None:
    now = [0.0]
    limiter = SlidingWindowLimiter(2, 10.0, clock=lambda: now[0], max_keys=2)
    assert limiter.hit("a") is None
    now[0] = 4.0
    assert limiter.hit("a") is None
    assert limiter.hit("a") == 6  # the first hit leaves the window at t=10
    now[0] = 10.0
    assert limiter.hit("a") is None  # the first hit slid out
    assert limiter.hit("b") is None
    assert limiter.hit("c") is None  # evicts "a", the least recently used
    assert limiter.hit("a") is None
    assert SlidingWindowLimiter(0, 1.0).hit("x") is None  # 0 turns limiting off
