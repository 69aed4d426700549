"""Sign-in lockout and mailed links reveal nothing about which accounts exist, and a lock
slows whoever guesses without locking the owner out."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from auth_helpers import PASSWORD, ManualClock, link_in, login, outbox, signup
from server_helpers import assert_error
from sqlalchemy import text
from tenancy_helpers import verified_user

from fabric_server.app import create_app
from fabric_server.auth.retention import prune_sign_in_throttles
from fabric_server.db.types import utcnow
from fabric_server.services import Services, build_services
from fabric_server.testing import fast_settings

ATTACKER = ("198.51.100.7", 40000)
OWNER = ("203.0.113.9", 50000)


@asynccontextmanager
async def two_places(
    database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient, Services]]:
    """One server, reached from two client addresses."""
    services = build_services(fast_settings(database_url, tmp_path))
    app = create_app(services=services)
    async with app.router.lifespan_context(app):
        clients = [
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, client=address),
                base_url="http://fabric.test",
            )
            for address in (ATTACKER, OWNER)
        ]
        async with clients[0] as attacker, clients[1] as owner:
            yield attacker, owner, services


def answer(response: httpx.Response) -> tuple[int, str | None, Any]:
    """What a caller sees, without the request id."""
    body = response.json()
    return response.status_code, response.headers.get("retry-after"), body.get("error")


async def test_known_and_unknown_accounts_meet_the_same_lock(
    client: httpx.AsyncClient, services: Services
) -> None:
    clock = ManualClock()
    services.auth.core.clock = clock
    await signup(client, "known@example.com")
    for attempt in range(7):
        known = await login(client, "known@example.com", "guess")
        unknown = await login(client, "nobody@example.com", "guess")
        assert answer(known) == answer(unknown), attempt
        expected = 401 if attempt < 4 else 429
        assert known.status_code == expected, (attempt, known.text)
    assert answer(known)[1] == "900"
    body = assert_error(known, 429, "rate_limited")
    assert "account" not in body["error"]["message"]


async def test_a_lock_holds_only_where_it_was_earned(database_url: str, tmp_path: Path) -> None:
    async with two_places(database_url, tmp_path) as (attacker, owner, services):
        clock = ManualClock()
        services.auth.core.clock = clock
        await signup(owner, "target@example.com")
        for _ in range(5):
            await login(attacker, "target@example.com", "guess")
        assert_error(await login(attacker, "target@example.com"), 429, "rate_limited")
        # The owner, elsewhere, is not locked out by someone else's guesses.
        assert (await login(owner, "target@example.com")).status_code == 200
        assert_error(await login(attacker, "target@example.com"), 429, "rate_limited")
        # The lock ends after its time.
        clock.advance(minutes=15, seconds=1)
        assert (await login(attacker, "target@example.com")).status_code == 200


async def test_a_magic_link_lifts_the_owners_own_lock(database_url: str, tmp_path: Path) -> None:
    async with two_places(database_url, tmp_path) as (_attacker, owner, services):
        await verified_user(owner, services, "forgetful@example.com")
        for _ in range(5):
            await login(owner, "forgetful@example.com", "wrong")
        assert_error(await login(owner, "forgetful@example.com"), 429, "rate_limited")
        await owner.post("/v1/auth/magic-link", json={"email": "forgetful@example.com"})
        link = link_in(
            (await outbox(services, "forgetful@example.com"))[0]["body"],
            "/v1/auth/magic-link/verify",
        )
        assert (await owner.get(link)).status_code == 200
        assert (await login(owner, "forgetful@example.com", PASSWORD)).status_code == 200


async def test_mailing_endpoints_answer_before_any_account_work(
    client: httpx.AsyncClient, services: Services
) -> None:
    # Whatever the work for an existing account costs — or even if it fails — the answer
    # does not wait for it, so it looks and takes the same for every address.
    await signup(client, "exists@example.com")
    async with services.db.write() as session:
        await session.execute(text("ALTER TABLE mail_outbox RENAME TO mail_outbox_away"))
    for path in ("/v1/auth/forgot-password", "/v1/auth/magic-link", "/v1/auth/resend-verification"):
        known = await client.post(path, json={"email": "exists@example.com"})
        unknown = await client.post(path, json={"email": "ghost@example.com"})
        assert known.status_code == unknown.status_code == 202, (path, known.text)
        assert known.json()["data"] == unknown.json()["data"]


async def test_retention_forgets_old_failures(
    client: httpx.AsyncClient, services: Services
) -> None:
    for _ in range(5):
        await login(client, "someone@example.com", "guess")
    async with services.db.read() as session:
        before = await session.scalar(text("SELECT count(*) FROM sign_in_throttles"))
    assert before == 3  # the pair, the email from anywhere, the address for any email
    # Locked now: a cutoff in the past keeps the row, one after the lock ends deletes it.
    assert await prune_sign_in_throttles(services.db, utcnow() - dt.timedelta(days=1)) == 0
    assert await prune_sign_in_throttles(services.db, utcnow() + dt.timedelta(days=1)) == 3
