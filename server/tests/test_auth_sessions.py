"""Sessions: refresh rotation with reuse detection, sign-out, and access tokens on the API."""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import jwt
import pytest
from auth_helpers import PASSWORD, ManualClock, app_client, auth_events, bearer, login, signup
from server_helpers import assert_error

from fabric_server.services import Services
from fabric_server.settings import Settings
from fabric_server.testing import fast_settings

JOB = {"modality": "text", "input": {"prompt": "hello"}}


@pytest.fixture
def production_settings(database_url: str, tmp_path: Path) -> Settings:
    return fast_settings(
        database_url,
        tmp_path,
        env="production",
        signing_secret="production-signing-secret-of-some-length",
        secrets_master_key="k" * 32,
    )


@pytest.fixture
async def production(
    production_settings: Settings,
) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    async with app_client(production_settings) as pair:
        yield pair


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/v1/auth/token/refresh", json={"refresh_token": token})


async def test_refresh_rotates_the_pair(client: httpx.AsyncClient) -> None:
    first = await signup(client, "rot@example.com")
    response = await refresh(client, first["refresh_token"])
    assert response.status_code == 200, response.text
    second = response.json()["data"]
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["user"]["id"] == first["user"]["id"]
    third = await refresh(client, second["refresh_token"])
    assert third.status_code == 200


async def test_reusing_a_refresh_token_revokes_the_family(
    production: tuple[httpx.AsyncClient, Services],
) -> None:
    client, services = production
    first = await signup(client, "reuse@example.com")
    second = (await refresh(client, first["refresh_token"])).json()["data"]
    other_device = (await login(client, "reuse@example.com")).json()["data"]

    body = assert_error(await refresh(client, first["refresh_token"]), 401, "unauthorized")
    assert "already used" in body["error"]["message"]
    # The whole family is gone: the token issued by the rotation and its access token.
    assert_error(await refresh(client, second["refresh_token"]), 401, "unauthorized")
    assert_error(await client.get("/v1/jobs", headers=bearer(second)), 401, "unauthorized")
    # Another session of the same user is untouched.
    assert (await client.get("/v1/jobs", headers=bearer(other_device))).status_code == 200
    assert (await refresh(client, other_device["refresh_token"])).status_code == 200
    reused = [e for e in await auth_events(services) if e.kind == "auth.refresh.reused"]
    assert len(reused) == 1
    assert first["refresh_token"] not in repr(reused[0].payload)


async def test_unknown_refresh_token_is_unauthorized(client: httpx.AsyncClient) -> None:
    assert_error(await refresh(client, "made-up"), 401, "unauthorized")


async def test_refresh_token_expires(client: httpx.AsyncClient, services: Services) -> None:
    clock = ManualClock()
    services.auth.core.clock = clock
    tokens = await signup(client, "late@example.com")
    clock.advance(days=31)
    assert_error(await refresh(client, tokens["refresh_token"]), 401, "unauthorized")


async def test_access_token_works_in_production(
    production: tuple[httpx.AsyncClient, Services],
) -> None:
    client, _ = production
    tokens = await signup(client, "prod@example.com")
    created = await client.post("/v1/jobs", json=JOB, headers=bearer(tokens))
    assert created.status_code == 201, created.text
    job = created.json()["data"]
    assert job["created_by"] == tokens["user"]["id"]
    listed = await client.get("/v1/jobs", headers=bearer(tokens))
    assert [item["id"] for item in listed.json()["data"]["items"]] == [job["id"]]
    # Another user does not see it.
    other = await signup(client, "other@example.com")
    assert_error(await client.get(f"/v1/jobs/{job['id']}", headers=bearer(other)), 404, "not_found")


async def test_logout_revokes_the_access_token_at_once(
    production: tuple[httpx.AsyncClient, Services],
) -> None:
    client, services = production
    tokens = await signup(client, "bye@example.com")
    assert (await client.get("/v1/jobs", headers=bearer(tokens))).status_code == 200
    # What the SDK sends: the token in the body and in the Authorization header.
    out = await client.post(
        "/v1/auth/logout", json={"access_token": tokens["access_token"]}, headers=bearer(tokens)
    )
    assert out.status_code == 200, out.text
    assert out.json()["data"] == {"revoked": 1}
    assert_error(await client.get("/v1/jobs", headers=bearer(tokens)), 401, "unauthorized")
    assert_error(await refresh(client, tokens["refresh_token"]), 401, "unauthorized")
    again = await client.post("/v1/auth/logout", json={"access_token": tokens["access_token"]})
    assert again.json()["data"] == {"revoked": 0}
    assert "auth.logout" in [e.kind for e in await auth_events(services)]


async def test_logout_with_only_the_header(client: httpx.AsyncClient) -> None:
    tokens = await signup(client, "header@example.com")
    out = await client.post("/v1/auth/logout", headers=bearer(tokens))
    assert out.json()["data"] == {"revoked": 1}
    assert_error(await client.get("/v1/jobs", headers=bearer(tokens)), 401, "unauthorized")


async def test_logout_all_signs_out_every_session(
    production: tuple[httpx.AsyncClient, Services],
) -> None:
    client, _ = production
    one = await signup(client, "all@example.com")
    two = (await login(client, "all@example.com")).json()["data"]
    out = await client.post("/v1/auth/logout-all", headers=bearer(two))
    assert out.json()["data"] == {"revoked": 2}
    for tokens in (one, two):
        assert_error(await client.get("/v1/jobs", headers=bearer(tokens)), 401, "unauthorized")
    assert_error(await client.post("/v1/auth/logout-all"), 401, "unauthorized")


async def test_change_password_revokes_every_session(
    production: tuple[httpx.AsyncClient, Services],
) -> None:
    client, _ = production
    one = await signup(client, "change@example.com")
    two = (await login(client, "change@example.com")).json()["data"]
    wrong = await client.post(
        "/v1/auth/change-password",
        json={"current_password": "not-it", "new_password": "brand-new-secret"},
        headers=bearer(one),
    )
    assert_error(wrong, 401, "unauthorized")
    short = await client.post(
        "/v1/auth/change-password",
        json={"current_password": PASSWORD, "new_password": "short"},
        headers=bearer(one),
    )
    assert_error(short, 400, "validation_failed")
    changed = await client.post(
        "/v1/auth/change-password",
        json={"current_password": PASSWORD, "new_password": "brand-new-secret"},
        headers=bearer(one),
    )
    assert changed.status_code == 200, changed.text
    fresh = changed.json()["data"]
    for tokens in (one, two):
        assert_error(await client.get("/v1/jobs", headers=bearer(tokens)), 401, "unauthorized")
    assert (await client.get("/v1/jobs", headers=bearer(fresh))).status_code == 200
    assert_error(await login(client, "change@example.com"), 401, "unauthorized")
    assert (await login(client, "change@example.com", "brand-new-secret")).status_code == 200


async def test_tampered_and_foreign_tokens_are_refused(
    production: tuple[httpx.AsyncClient, Services],
) -> None:
    client, _ = production
    tokens = await signup(client, "tamper@example.com")
    header, payload, signature = tokens["access_token"].split(".")
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    for token in (
        f"{header}.{payload}.{flipped}",
        jwt.encode(
            {"sub": tokens["user"]["id"], "sid": "x", "iss": "fabric", "aud": "fabric-api"},
            "production-signing-secret-of-some-length",  # the raw secret is not the key
            algorithm="HS256",
        ),
        "fab_live_some_api_key",
        "garbage",
    ):
        response = await client.get("/v1/jobs", headers={"authorization": f"Bearer {token}"})
        assert_error(response, 401, "unauthorized")


async def test_expired_access_token_is_refused(
    production: tuple[httpx.AsyncClient, Services],
) -> None:
    client, services = production
    clock = ManualClock()
    services.auth.core.clock = clock
    tokens = await signup(client, "expiry@example.com")
    clock.advance(seconds=7199)
    assert (await client.get("/v1/jobs", headers=bearer(tokens))).status_code == 200
    clock.advance(seconds=2)
    assert_error(await client.get("/v1/jobs", headers=bearer(tokens)), 401, "unauthorized")
    # The refresh token still trades for a fresh pair.
    fresh = (await refresh(client, tokens["refresh_token"])).json()["data"]
    assert (await client.get("/v1/jobs", headers=bearer(fresh))).status_code == 200


async def test_dev_secret_is_private_and_survives_restarts(
    database_url: str, tmp_path: Path
) -> None:
    settings = fast_settings(database_url, tmp_path)
    async with app_client(settings) as (client, _):
        tokens = await signup(client, "restart@example.com")
    secret_file = tmp_path / "signing_secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    async with app_client(settings) as (client, _):
        assert (await client.get("/v1/jobs", headers=bearer(tokens))).status_code == 200
