"""The SDK's account methods, as the product spec writes them, against a real server."""

from __future__ import annotations

import re
import time
from urllib.parse import unquote

import httpx
import pytest

from fabric_platform import AsyncFabricClient, FabricAuthError, FabricClient
from fabric_server.testing import LiveServer


def mailed_token(server: LiveServer, to: str, page: str) -> str:
    # Mailing endpoints answer first and mail right after: poll the outbox a little.
    deadline = time.monotonic() + 10
    while True:
        mails = httpx.get(f"{server.base_url}/v1/dev/outbox", params={"to": to}).json()["data"]
        for mail in mails:  # newest first
            match = re.search(rf"/{page}\?token=(\S+)", mail["body"])
            if match:
                return unquote(match.group(1))
        if time.monotonic() > deadline:
            raise AssertionError(f"no {page} link mailed to {to}")
        time.sleep(0.02)


def test_spec_authentication_snippet(server: LiveServer) -> None:
    fabric = FabricClient(base_url=server.base_url)

    # Email/password
    fabric.signup("user@example.com", "password123")
    auth = fabric.login("user@example.com", "password123")  # auto-stores tokens
    assert fabric.access_token == auth["access_token"]

    # Passwordless
    fabric.magic_link("user@example.com")
    magic = fabric.verify_magic_link(mailed_token(server, "user@example.com", "magic-link/verify"))
    assert magic["user"]["email"] == "user@example.com"

    # OAuth
    url = fabric.social_login_url("google")  # redirect user here
    assert url == f"{server.base_url}/v1/auth/social/google"

    # Token management
    refresh_token = magic["refresh_token"]
    renewed = fabric.refresh_token(refresh_token)
    assert renewed["refresh_token"] != refresh_token
    with pytest.raises(FabricAuthError):
        fabric.refresh_token(refresh_token)  # single use: a replay is refused
    fabric.logout()
    assert fabric.access_token is None

    # Password recovery
    fabric.forgot_password("user@example.com")
    recovery_token = mailed_token(server, "user@example.com", "reset-password")
    fabric.reset_password(recovery_token, "new_password")
    with pytest.raises(FabricAuthError):
        fabric.login("user@example.com", "password123")
    assert fabric.login("user@example.com", "new_password")["user"]["email"] == "user@example.com"
    fabric.close()


def test_signed_in_client_uses_its_token_on_every_call(server: LiveServer) -> None:
    with FabricClient(base_url=server.base_url) as fabric:
        fabric.signup("ada@example.com", "password123")
        job = fabric.create_job(modality="text", input={"prompt": "as ada"})
        user_id = fabric.login("ada@example.com", "password123")["user"]["id"]
        assert fabric.get_job(job["id"])["created_by"] == user_id


def test_a_revoked_session_is_refused(server: LiveServer) -> None:
    with FabricClient(base_url=server.base_url) as first:
        first.signup("bob@example.com", "password123")
        stolen = first.access_token
        first.logout_all()
    thief = FabricClient(base_url=server.base_url, api_key=stolen)
    with thief, pytest.raises(FabricAuthError):
        thief.list_jobs()


async def test_async_account_flow(server: LiveServer) -> None:
    async with AsyncFabricClient(base_url=server.base_url) as fabric:
        await fabric.signup("eve@example.com", "password123")
        me = await fabric.login("eve@example.com", "password123")
        job = await fabric.create_job(modality="text", input={"prompt": "async"})
        assert job["created_by"] == me["user"]["id"]
        await fabric.logout()
        assert fabric.access_token is None
