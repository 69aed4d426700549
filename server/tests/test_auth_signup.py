"""Sign-up and sign-in with email and password."""

from __future__ import annotations

import httpx
from argon2 import PasswordHasher
from auth_helpers import PASSWORD, auth_events, bearer, login, outbox, signup
from server_helpers import assert_error
from sqlalchemy import select

from fabric_server.access.models import Membership
from fabric_server.auth.models import User
from fabric_server.orgs.models import Organization
from fabric_server.services import Services
from fabric_server.settings import DEFAULT_ORGANIZATION_ID


async def test_signup_returns_tokens_and_the_user(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/auth/signup", json={"email": "ada@example.com", "password": "password123"}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["meta"]["status"] == 201
    data = body["data"]
    assert data["token_type"] == "bearer"
    assert data["expires_in"] == 7200
    assert data["access_token"].count(".") == 2  # a JWT
    assert data["refresh_token"]
    assert data["user"] == {
        "id": data["user"]["id"],
        "email": "ada@example.com",
        "display_name": None,
        "email_verified": False,
    }


async def test_signup_creates_a_personal_organization(
    client: httpx.AsyncClient, services: Services
) -> None:
    first = await signup(client, "ada.lovelace@example.com", display_name="Ada")
    second = await signup(client, "Ada.Lovelace@example.org")
    async with services.db.read() as session:
        rows = (
            await session.execute(
                select(Membership.principal_id, Membership.role, Organization)
                .join(Organization, Organization.id == Membership.organization_id)
                .where(Membership.organization_id != DEFAULT_ORGANIZATION_ID)
            )
        ).all()
    owned = {principal: (role, org) for principal, role, org in rows}
    role, org = owned[first["user"]["id"]]
    assert role == "owner"
    assert org.slug == "ada-lovelace"
    assert org.name == "Ada's organization"
    other_role, other_org = owned[second["user"]["id"]]
    assert other_role == "owner"
    assert other_org.slug.startswith("ada-lovelace-")  # made unique


async def test_dev_mode_signup_joins_the_default_organization(client: httpx.AsyncClient) -> None:
    tokens = await signup(client, "dev@example.com")
    job = await client.post(
        "/v1/jobs", json={"modality": "text", "input": {"prompt": "hi"}}, headers=bearer(tokens)
    )
    assert job.status_code == 201, job.text
    assert job.json()["data"]["organization_id"] == DEFAULT_ORGANIZATION_ID
    assert job.json()["data"]["created_by"] == tokens["user"]["id"]


async def test_duplicate_email_is_a_conflict_whatever_the_case(client: httpx.AsyncClient) -> None:
    await signup(client, "grace@example.com")
    response = await client.post(
        "/v1/auth/signup", json={"email": "  GRACE@Example.com ", "password": "another-pass"}
    )
    assert_error(response, 409, "conflict")


async def test_password_policy_is_a_minimum_length(client: httpx.AsyncClient) -> None:
    short = await client.post(
        "/v1/auth/signup", json={"email": "short@example.com", "password": "1234567"}
    )
    body = assert_error(short, 400, "validation_failed")
    assert body["error"]["details"]["errors"][0]["path"] == "password"
    assert "8 characters" in body["error"]["message"]
    # No composition rules: lower-case letters and digits are enough.
    await signup(client, "simple@example.com", "password123")


async def test_invalid_email_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/auth/signup", json={"email": "not-an-email", "password": PASSWORD}
    )
    body = assert_error(response, 400, "validation_failed")
    assert body["error"]["details"]["errors"][0]["path"] == "email"


async def test_signup_mails_a_verification_link(
    client: httpx.AsyncClient, services: Services
) -> None:
    await signup(client, "mail@example.com")
    mails = await outbox(services, "mail@example.com")
    assert len(mails) == 1
    assert mails[0]["subject"] == "Confirm your email address"
    assert "http://127.0.0.1:3001/v1/auth/verify?token=" in mails[0]["body"]


async def test_login_with_the_right_password(client: httpx.AsyncClient) -> None:
    created = await signup(client, "lin@example.com")
    response = await login(client, "LIN@example.com")
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["user"]["id"] == created["user"]["id"]
    assert data["access_token"] != created["access_token"]
    assert data["refresh_token"] != created["refresh_token"]


async def test_wrong_password_and_unknown_email_look_alike(client: httpx.AsyncClient) -> None:
    await signup(client, "who@example.com")
    wrong = assert_error(
        await login(client, "who@example.com", "not-the-password"), 401, "unauthorized"
    )
    unknown = assert_error(await login(client, "nobody@example.com"), 401, "unauthorized")
    assert wrong["error"]["message"] == unknown["error"]["message"]


async def test_login_events_carry_no_secrets(client: httpx.AsyncClient, services: Services) -> None:
    tokens = await signup(client, "audit@example.com")
    await login(client, "audit@example.com", "wrong-password")
    await login(client, "audit@example.com")
    events = await auth_events(services)
    kinds = [event.kind for event in events]
    assert kinds == ["auth.signup", "auth.login.failed", "auth.login.succeeded"]
    assert events[1].payload["reason"] == "wrong_password"
    assert events[2].payload["user_id"] == tokens["user"]["id"]
    flat = repr([event.payload for event in events])
    for secret in (PASSWORD, "wrong-password", tokens["access_token"], tokens["refresh_token"]):
        assert secret not in flat


async def test_login_upgrades_an_outdated_hash(
    client: httpx.AsyncClient, services: Services
) -> None:
    tokens = await signup(client, "old@example.com")
    weaker = PasswordHasher(time_cost=1, memory_cost=16, parallelism=2).hash(PASSWORD)
    async with services.db.write() as session:
        user = await session.get(User, tokens["user"]["id"])
        assert user is not None
        user.password_hash = weaker
    assert (await login(client, "old@example.com")).status_code == 200
    async with services.db.read() as session:
        stored = await session.scalar(
            select(User.password_hash).where(User.id == tokens["user"]["id"])
        )
    assert stored is not None
    assert stored != weaker
    assert stored.startswith("$argon2id$")
    assert "p=1" in stored
    assert (await login(client, "old@example.com")).status_code == 200
