"""Social sign-in against a real OAuth2/OIDC provider running on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from auth_helpers import PASSWORD, app_client, bearer, link_in, login, outbox, signup
from fake_oauth import FakeProvider
from server_helpers import assert_error

from fabric_server.services import Services
from fabric_server.settings import Settings
from fabric_server.testing import fast_settings, free_port

PUBLIC_URL = "http://fabric.test"  # the test client's base URL
TRUSTED_KEY = "trusted-application-key"


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeProvider]:
    with FakeProvider() as fake:
        yield fake


@pytest.fixture(autouse=True)
def signed_in_as_sam(provider: FakeProvider) -> None:
    provider.profile = {
        "sub": "user-1",
        "email": "sam@example.com",
        "email_verified": True,
        "name": "Sam",
        "picture": "https://img.example.com/sam.png",
    }


def social_settings(
    database_url: str, tmp_path: Path, provider: FakeProvider, **overrides: object
) -> Settings:
    values: dict[str, object] = {
        "public_url": PUBLIC_URL,
        "oidc_providers": {
            "fake": provider.settings(),
            "hub": provider.settings(
                profile="github",
                userinfo_url=f"{provider.base_url}/user",
                emails_url=f"{provider.base_url}/user/emails",
                scopes="read:user user:email",
            ),
            # Authorizes at the fake, but its token endpoint is a port nobody listens on.
            "down": provider.settings(token_url=f"http://127.0.0.1:{free_port()}/token"),
        },
        "social_login_trusted_key": TRUSTED_KEY,
        **overrides,
    }
    return fast_settings(database_url, tmp_path, **values)


@pytest.fixture
def settings(database_url: str, tmp_path: Path, provider: FakeProvider) -> Settings:
    return social_settings(database_url, tmp_path, provider)


async def start(client: httpx.AsyncClient, name: str = "fake") -> str:
    """Start the flow; returns the provider URL (the state cookie is now in the client)."""
    response = await client.get(f"/v1/auth/social/{name}")
    assert response.status_code == 302, response.text
    return response.headers["location"]


async def at_provider(url: str) -> str:
    """The user approves at the provider, which redirects back: the callback URL."""
    async with httpx.AsyncClient() as browser:
        response = await browser.get(url)
    assert response.status_code == 302, response.text
    return response.headers["location"]


async def sign_in(client: httpx.AsyncClient, name: str = "fake") -> httpx.Response:
    return await client.get(await at_provider(await start(client, name)))


async def test_first_sign_in_creates_a_verified_account(
    client: httpx.AsyncClient, provider: FakeProvider
) -> None:
    authorize = await start(client)
    query = parse_qs(urlsplit(authorize).query)
    assert authorize.startswith(f"{provider.base_url}/authorize?")
    assert query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"] == [f"{PUBLIC_URL}/v1/auth/callback"]
    assert "fabric_oauth_state" in client.cookies

    response = await client.get(await at_provider(authorize))
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["token_type"] == "bearer"
    assert data["user"]["email"] == "sam@example.com"
    assert data["user"]["email_verified"] is True
    assert data["user"]["display_name"] == "Sam"
    assert (await client.get("/v1/jobs", headers=bearer(data))).status_code == 200
    assert "fabric_oauth_state" not in client.cookies  # the flow is over

    again = (await sign_in(client)).json()["data"]
    assert again["user"]["id"] == data["user"]["id"]


async def verified_signup(
    client: httpx.AsyncClient, services: Services, email: str
) -> dict[str, object]:
    tokens = await signup(client, email)
    link = link_in((await outbox(services, email))[0]["body"], "/v1/auth/verify")
    # Signed in: the one who set the password also reads the mailbox, so both are kept.
    assert (await client.get(link, headers=bearer(tokens))).status_code == 200
    return tokens


async def test_verified_email_links_an_existing_account(
    client: httpx.AsyncClient, services: Services
) -> None:
    tokens = await verified_signup(client, services, "sam@example.com")
    user = tokens["user"]
    assert isinstance(user, dict)
    social = (await sign_in(client)).json()["data"]
    assert social["user"]["id"] == user["id"]
    # The password keeps working, and the earlier session too.
    assert (await login(client, "sam@example.com")).status_code == 200
    assert (await client.get("/v1/jobs", headers=bearer(tokens))).status_code == 200


async def test_linking_an_unproven_account_removes_its_password(
    client: httpx.AsyncClient,
) -> None:
    # Someone registered Sam's address first (never verified it) and is still signed in.
    squatter = await signup(client, "sam@example.com")
    social = (await sign_in(client)).json()["data"]
    assert social["user"]["id"] == squatter["user"]["id"]
    assert social["user"]["email_verified"] is True
    assert_error(await login(client, "sam@example.com"), 401, "unauthorized")
    assert_error(await client.get("/v1/jobs", headers=bearer(squatter)), 401, "unauthorized")
    assert (await client.get("/v1/jobs", headers=bearer(social))).status_code == 200


async def test_unverified_provider_email_does_not_take_an_account(
    client: httpx.AsyncClient, provider: FakeProvider
) -> None:
    await signup(client, "sam@example.com")
    provider.profile = {**provider.profile, "email_verified": False}
    assert_error(await sign_in(client), 409, "conflict")


async def test_a_tampered_state_is_refused(client: httpx.AsyncClient) -> None:
    callback = await at_provider(await start(client))
    parts = urlsplit(callback)
    query = parse_qs(parts.query)
    forged = f"{PUBLIC_URL}{parts.path}?code={query['code'][0]}&state=forged-state"
    body = assert_error(await client.get(forged), 422, "bad_request")
    assert "state" in body["error"]["message"]
    # Without the cookie set by the start of the flow the callback is refused too.
    client.cookies.clear()
    assert_error(await client.get(callback), 422, "bad_request")


async def test_a_wrong_pkce_verifier_is_refused_by_the_provider(
    client: httpx.AsyncClient, provider: FakeProvider
) -> None:
    # Flow A's code arrives with flow B's state and cookie (so B's verifier): a stolen or
    # injected code is useless without the verifier that matches its challenge.
    code_a = parse_qs(urlsplit(await at_provider(await start(client))).query)["code"][0]
    state_b = parse_qs(urlsplit(await at_provider(await start(client))).query)["state"][0]
    errors_before = len(provider.token_errors)
    response = await client.get(f"/v1/auth/callback?code={code_a}&state={state_b}")
    assert_error(response, 401, "unauthorized")
    assert provider.token_errors[errors_before:] == ["PKCE verification failed"]


async def test_provider_refusal_is_unauthorized(client: httpx.AsyncClient) -> None:
    state = parse_qs(urlsplit(await start(client)).query)["state"][0]
    response = await client.get(f"/v1/auth/callback?error=access_denied&state={state}")
    body = assert_error(response, 401, "unauthorized")
    assert "access_denied" in body["error"]["message"]


async def test_unreachable_provider_is_unavailable(client: httpx.AsyncClient) -> None:
    body = assert_error(await sign_in(client, "down"), 503, "unavailable")
    assert "could not be reached" in body["error"]["message"]


async def test_unconfigured_provider_is_not_found(client: httpx.AsyncClient) -> None:
    body = assert_error(await client.get("/v1/auth/social/myspace"), 404, "not_found")
    assert "not configured" in body["error"]["message"]
    assert "fake" in body["error"]["message"]


async def test_github_style_profiles(client: httpx.AsyncClient, provider: FakeProvider) -> None:
    provider.github_user = {"id": 4242, "login": "octo", "name": None, "email": None}
    provider.github_emails = [
        {"email": "octo@old.example.com", "primary": False, "verified": True},
        {"email": "Octo@Example.com", "primary": True, "verified": True},
    ]
    data = (await sign_in(client, "hub")).json()["data"]
    assert data["user"]["email"] == "octo@example.com"
    assert data["user"]["email_verified"] is True
    assert data["user"]["display_name"] == "octo"


async def test_redirect_mode_puts_tokens_in_the_fragment(
    database_url: str, tmp_path: Path, provider: FakeProvider
) -> None:
    settings = social_settings(
        database_url, tmp_path, provider, social_redirect_url="https://app.example.com/signed-in"
    )
    async with app_client(settings, base_url=PUBLIC_URL) as (client, _):
        response = await sign_in(client)
        assert response.status_code == 302
        target = urlsplit(response.headers["location"])
        assert f"{target.scheme}://{target.netloc}{target.path}" == (
            "https://app.example.com/signed-in"
        )
        assert not target.query
        fragment = {k: v[0] for k, v in parse_qs(target.fragment).items()}
        assert fragment["token_type"] == "bearer"
        assert fragment["expires_in"] == "7200"
        assert (await client.get("/v1/jobs", headers=bearer(fragment))).status_code == 200

        failed = await client.get("/v1/auth/callback?code=x&state=y")
        assert failed.status_code == 302
        error = parse_qs(urlsplit(failed.headers["location"]).fragment)
        assert error["error"] == ["bad_request"]


async def test_the_flow_moves_to_the_public_host_first(
    database_url: str, tmp_path: Path, provider: FakeProvider
) -> None:
    settings = social_settings(database_url, tmp_path, provider)
    async with app_client(settings, base_url="http://localhost:3001") as (client, _):
        response = await client.get("/v1/auth/social/fake")
        assert response.status_code == 302
        assert response.headers["location"] == f"{PUBLIC_URL}/v1/auth/social/fake?canonical=true"
        assert "set-cookie" not in response.headers
        moved = await client.get("/v1/auth/social/fake?canonical=true")
        assert moved.headers["location"].startswith(f"{provider.base_url}/authorize?")


# --- consumer-driven social login ----------------------------------------------------------

PROFILE = {
    "provider": "google",
    "provider_user_id": "g-123",
    "email": "Pat@Example.com",
    "display_name": "Pat",
    "avatar_url": "https://img.example.com/pat.png",
}


async def test_trusted_social_login(client: httpx.AsyncClient) -> None:
    missing = await client.post("/v1/auth/social-login", json=PROFILE)
    assert_error(missing, 403, "forbidden")
    wrong = await client.post(
        "/v1/auth/social-login", json=PROFILE, headers={"x-fabric-trusted-key": "guess"}
    )
    assert_error(wrong, 403, "forbidden")
    first = await client.post(
        "/v1/auth/social-login", json=PROFILE, headers={"x-fabric-trusted-key": TRUSTED_KEY}
    )
    assert first.status_code == 200, first.text
    user = first.json()["data"]["user"]
    assert user["email"] == "pat@example.com"
    assert user["email_verified"] is True
    # The key may also come as the bearer token (a client configured with it as its key).
    second = await client.post(
        "/v1/auth/social-login", json=PROFILE, headers={"authorization": f"Bearer {TRUSTED_KEY}"}
    )
    assert second.json()["data"]["user"]["id"] == user["id"]


async def test_social_login_is_off_without_a_key(database_url: str, tmp_path: Path) -> None:
    async with app_client(fast_settings(database_url, tmp_path)) as (client, _):
        response = await client.post(
            "/v1/auth/social-login", json=PROFILE, headers={"x-fabric-trusted-key": ""}
        )
        body = assert_error(response, 403, "forbidden")
        assert "not enabled" in body["error"]["message"]


async def test_social_account_can_set_a_password_by_recovery(
    client: httpx.AsyncClient, services: Services
) -> None:
    data = (await sign_in(client)).json()["data"]
    no_password = await client.post(
        "/v1/auth/change-password",
        json={"current_password": "anything", "new_password": PASSWORD},
        headers=bearer(data),
    )
    assert_error(no_password, 409, "conflict")
    await client.post("/v1/auth/forgot-password", json={"email": "sam@example.com"})
    mails = await outbox(services, "sam@example.com")
    link = link_in(mails[0]["body"], "/v1/auth/reset-password")
    token = parse_qs(urlsplit(link).query)["token"][0]
    reset = await client.post(
        "/v1/auth/reset-password", json={"token": token, "new_password": PASSWORD}
    )
    assert reset.status_code == 200
    assert (await login(client, "sam@example.com")).status_code == 200
