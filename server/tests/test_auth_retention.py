"""Credential retention: sessions, refresh tokens, mailed tokens and dead invitations are
deleted once they stopped working more than `FABRIC_AUTH_RETENTION_DAYS` (7) ago; live ones,
and recently ended ones, stay."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from auth_helpers import ManualClock, bearer, login, outbox, signup, token_in
from pydantic import ValidationError
from server_helpers import assert_error
from sqlalchemy import select
from tenancy_helpers import User, create_org, data, invite, verified_user

from fabric_server.auth.models import AuthSession, OneTimeToken, RefreshToken
from fabric_server.auth.models import User as Account
from fabric_server.auth.retention import prune_sessions
from fabric_server.auth.tokens import token_digest
from fabric_server.events.retention import RetentionRule, prune_once
from fabric_server.runtime import retention_rules
from fabric_server.services import Services, build_services
from fabric_server.settings import Settings
from fabric_server.testing import fast_settings

START = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
AUTH_RULES = ["sessions", "refresh tokens", "mailed tokens", "invitations"]


def fixed_clock(services: Services) -> ManualClock:
    """One clock for the accounts and invitations code, at START (day 0)."""
    clock = ManualClock()
    clock.now = START
    services.auth.core.clock = clock
    services.invitations.clock = clock
    return clock


def at(clock: ManualClock, days: float) -> dt.datetime:
    clock.now = START + dt.timedelta(days=days)
    return clock.now


def auth_rules(services: Services) -> list[RetentionRule]:
    return [rule for rule in retention_rules(services) if rule.what in AUTH_RULES]


def session_of(tokens: dict[str, Any]) -> str:
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    return str(claims["sid"])


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/v1/auth/token/refresh", json={"refresh_token": token})


async def stored_sessions(services: Services) -> set[str]:
    async with services.db.read() as session:
        return set(await session.scalars(select(AuthSession.id)))


async def stored_refresh_tokens(services: Services) -> set[str]:
    async with services.db.read() as session:
        return set(await session.scalars(select(RefreshToken.token_hash)))


async def stored_mailed_tokens(services: Services) -> set[tuple[str | None, str]]:
    async with services.db.read() as session:
        rows = await session.execute(
            select(Account.email, OneTimeToken.purpose).join(
                Account, Account.id == OneTimeToken.user_id
            )
        )
        return {(email, purpose) for email, purpose in rows}


async def test_ended_sessions_go_with_their_refresh_tokens(
    client: httpx.AsyncClient, services: Services
) -> None:
    clock = fixed_clock(services)
    # Day 0: a session signed out at once, one left to expire (day 30), and one kept alive
    # by refreshing (a rotation on day 10, another on day 35: it now lasts until day 65).
    signed_out = await signup(client, "a@example.com")
    response = await client.post("/v1/auth/logout", headers=bearer(signed_out))
    assert data(response) == {"revoked": 1}
    data(await login(client, "a@example.com"))  # expires on day 30
    live = await signup(client, "b@example.com")
    at(clock, 10)
    recently_expired = data(await login(client, "a@example.com"))  # expires on day 40
    rotated = data(await refresh(client, live["refresh_token"]))  # its token: day 40
    at(clock, 35)
    current = data(await refresh(client, rotated["refresh_token"]))  # its token: day 65
    at(clock, 40)
    recently_signed_out = await signup(client, "c@example.com")
    at(clock, 41)
    response = await client.post("/v1/auth/logout", headers=bearer(recently_signed_out))
    assert data(response) == {"revoked": 1}

    now = at(clock, 45)
    kept = {session_of(t) for t in (recently_expired, live, recently_signed_out)}
    assert await prune_sessions(services.db, now - dt.timedelta(days=7), batch=1) == 2
    assert await stored_sessions(services) == kept
    # The refresh tokens of the deleted sessions went with them.
    assert await stored_refresh_tokens(services) == {
        token_digest(t["refresh_token"])
        for t in (recently_expired, live, rotated, current, recently_signed_out)
    }

    removed = await prune_once(auth_rules(services), now)
    assert (removed["sessions"], removed["refresh tokens"]) == (0, 1)
    # The first token of the live session expired on day 30; the one used on day 35 expired
    # on day 40, within the window, and stays.
    assert await stored_refresh_tokens(services) == {
        token_digest(t["refresh_token"])
        for t in (recently_expired, rotated, current, recently_signed_out)
    }
    assert await stored_sessions(services) == kept

    assert_error(await refresh(client, signed_out["refresh_token"]), 401, "unauthorized")
    fresh = data(await refresh(client, current["refresh_token"]))
    assert (await client.get("/v1/jobs", headers=bearer(fresh))).status_code == 200
    # A used token still in the table is still caught as a reused one: the session ends.
    body = assert_error(await refresh(client, rotated["refresh_token"]), 401, "unauthorized")
    assert "already used" in body["error"]["message"]
    assert_error(await refresh(client, fresh["refresh_token"]), 401, "unauthorized")


async def test_mailed_tokens_go_once_expired_or_used_for_a_week(
    client: httpx.AsyncClient, services: Services
) -> None:
    clock = fixed_clock(services)
    path = "/v1/auth/magic-link/verify"

    async def sign_in_by_mail(email: str) -> None:
        await client.post("/v1/auth/magic-link", json={"email": email})
        token = token_in((await outbox(services, email))[0]["body"], path)
        assert (await client.post(path, json={"token": token})).status_code == 200

    await signup(client, "old@example.com")  # its verification link expires on day 1
    await sign_in_by_mail("old@example.com")  # a magic link used on day 0
    at(clock, 37.5)
    await signup(client, "lapsed@example.com")  # expires on day 38.5
    at(clock, 40)
    await signup(client, "recent@example.com")
    await sign_in_by_mail("recent@example.com")
    at(clock, 44.99)  # a reset link lasts an hour
    await signup(client, "live@example.com")
    response = await client.post("/v1/auth/forgot-password", json={"email": "live@example.com"})
    assert response.status_code == 202
    reset = token_in((await outbox(services, "live@example.com"))[0]["body"], "/reset-password")

    removed = await prune_once(auth_rules(services), at(clock, 45))
    assert removed["mailed tokens"] == 2
    assert await stored_mailed_tokens(services) == {
        ("lapsed@example.com", "verify_email"),
        ("recent@example.com", "verify_email"),
        ("recent@example.com", "magic_link"),
        ("live@example.com", "verify_email"),
        ("live@example.com", "password_reset"),
    }
    check = await client.get("/v1/auth/reset-password", params={"token": reset})
    assert check.status_code == 200, check.text
    response = await client.post(
        "/v1/auth/reset-password", json={"token": reset, "new_password": "another-password"}
    )
    assert response.status_code == 200, response.text


async def test_expired_and_revoked_invitations_go_accepted_ones_stay(
    client: httpx.AsyncClient, services: Services
) -> None:
    clock = fixed_clock(services)
    owner = await verified_user(client, services, "owner@example.com")
    org = await create_org(client, owner, "acme")

    async def invited(email: str) -> str:
        # A fresh sign-in each time: the clock moves by days, access tokens last 2 hours.
        by = User(owner.id, owner.email, bearer(data(await login(client, owner.email))))
        invitation = data(await invite(client, by, org["id"], email), 201)
        return str(invitation["id"])

    async def revoke(invitation_id: str) -> None:
        headers = bearer(data(await login(client, owner.email)))
        response = await client.post(f"/v1/invitations/{invitation_id}/revoke", headers=headers)
        assert data(response)["status"] == "revoked"

    accepted = await invited("joined@example.com")
    mail = (await outbox(services, "joined@example.com"))[0]["body"]
    token = token_in(mail, f"/v1/invitations/{accepted}/accept")
    response = await client.get(f"/v1/invitations/{accepted}/accept", params={"token": token})
    assert response.status_code == 200, response.text
    await revoke(await invited("withdrawn@example.com"))
    await invited("lapsed@example.com")  # expires on day 7
    at(clock, 20)
    await invited("lapsed@example.com")  # the first one is settled as expired
    at(clock, 35)
    recently_lapsed = await invited("late@example.com")  # expires on day 42
    at(clock, 40)
    recently_revoked = await invited("changed-mind@example.com")
    await revoke(recently_revoked)
    at(clock, 44)
    pending = await invited("new@example.com")

    removed = await prune_once(auth_rules(services), at(clock, 45))
    assert removed["invitations"] == 3
    headers = bearer(data(await login(client, owner.email)))
    params = {"organization_id": org["id"]}
    listed = data(await client.get("/v1/invitations", params=params, headers=headers))
    assert {(i["id"], i["status"]) for i in listed} == {
        (accepted, "accepted"),
        (recently_lapsed, "expired"),
        (recently_revoked, "revoked"),
        (pending, "pending"),
    }


async def test_the_setting_decides_the_rules(database_url: str, tmp_path: Path) -> None:
    async def rules(**overrides: Any) -> list[tuple[str, float]]:
        services = build_services(fast_settings(database_url, tmp_path, **overrides))
        try:
            return [(rule.what, rule.days) for rule in auth_rules(services)]
        finally:
            await services.db.dispose()

    assert await rules() == [(what, 7.0) for what in AUTH_RULES]
    assert await rules(auth_retention_days=30) == [(what, 30.0) for what in AUTH_RULES]
    assert await rules(auth_retention_days=0) == []
    with pytest.raises(ValidationError, match="at least 1 day"):
        Settings(auth_retention_days=0.5)
