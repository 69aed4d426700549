"""Mailed links: email verification, magic links, password recovery — end to end via the
dev outbox."""

from __future__ import annotations

from typing import Any

import httpx
from auth_helpers import (
    PASSWORD,
    ManualClock,
    auth_events,
    bearer,
    link_in,
    login,
    outbox,
    signup,
    token_in,
)
from server_helpers import assert_error
from sqlalchemy import text

from fabric_server.services import Services


def stable(response: httpx.Response) -> tuple[int, Any]:
    """A response without its request id: what must not differ between accounts."""
    return response.status_code, response.json()["data"]


# --- email verification --------------------------------------------------------------------


async def test_following_the_verification_link(
    client: httpx.AsyncClient, services: Services
) -> None:
    tokens = await signup(client, "verify@example.com")
    link = link_in((await outbox(services, "verify@example.com"))[0]["body"], "/v1/auth/verify")
    # Followed in a client that holds the account's session: password and session are kept
    # (without one, the link claims the account for the mailbox owner: see
    # test_security_prehijack.py).
    response = await client.get(link, headers=bearer(tokens))
    assert response.status_code == 200, response.text
    assert response.json()["data"] == {**tokens["user"], "email_verified": True}
    assert_error(await client.get(link), 401, "unauthorized")  # single use
    me = (await login(client, "verify@example.com")).json()["data"]["user"]
    assert me["email_verified"] is True


async def test_posting_the_verification_token(
    client: httpx.AsyncClient, services: Services
) -> None:
    await signup(client, "post@example.com")
    token = token_in((await outbox(services, "post@example.com"))[0]["body"], "/v1/auth/verify")
    response = await client.post("/v1/auth/verify", json={"token": token})
    assert response.json()["data"]["email_verified"] is True
    assert_error(await client.post("/v1/auth/verify", json={"token": "nope"}), 401, "unauthorized")


async def test_resend_verification(client: httpx.AsyncClient, services: Services) -> None:
    await signup(client, "again@example.com")
    known = await client.post("/v1/auth/resend-verification", json={"email": "Again@example.com"})
    unknown = await client.post("/v1/auth/resend-verification", json={"email": "no@example.com"})
    assert stable(known) == stable(unknown)
    assert known.status_code == 202
    mails = await outbox(services, "again@example.com")
    assert len(mails) == 2
    old, new = (token_in(m["body"], "/v1/auth/verify") for m in reversed(mails))
    # A new link replaces the old one.
    assert_error(await client.post("/v1/auth/verify", json={"token": old}), 401, "unauthorized")
    assert (await client.post("/v1/auth/verify", json={"token": new})).status_code == 200
    # Verified accounts get no more verification mail.
    await client.post("/v1/auth/resend-verification", json={"email": "again@example.com"})
    assert len(await outbox(services, "again@example.com")) == 2
    assert await outbox(services, "no@example.com") == []


# --- magic links ---------------------------------------------------------------------------


async def test_magic_link_signs_in(client: httpx.AsyncClient, services: Services) -> None:
    tokens = await signup(client, "magic@example.com")
    response = await client.post("/v1/auth/magic-link", json={"email": "magic@example.com"})
    assert response.status_code == 202
    mail = (await outbox(services, "magic@example.com"))[0]
    assert mail["subject"] == "Your Fabric sign-in link"
    assert "15 minutes" in mail["body"]
    link = link_in(mail["body"], "/v1/auth/magic-link/verify")
    signed_in = await client.get(link)
    assert signed_in.status_code == 200, signed_in.text
    data = signed_in.json()["data"]
    assert data["user"]["id"] == tokens["user"]["id"]
    assert data["user"]["email_verified"] is True  # the link reached the mailbox
    assert (await client.get("/v1/jobs", headers=bearer(data))).status_code == 200
    assert_error(await client.get(link), 401, "unauthorized")  # single use
    methods = [e.payload.get("method") for e in await auth_events(services)]
    assert "magic_link" in methods


async def test_magic_link_by_post_and_its_expiry(
    client: httpx.AsyncClient, services: Services
) -> None:
    clock = ManualClock()
    services.auth.core.clock = clock
    await signup(client, "expire@example.com")
    path = "/v1/auth/magic-link/verify"
    await client.post("/v1/auth/magic-link", json={"email": "expire@example.com"})
    token = token_in((await outbox(services, "expire@example.com"))[0]["body"], path)
    clock.advance(minutes=15, seconds=1)
    assert_error(await client.post(path, json={"token": token}), 401, "unauthorized")
    await client.post("/v1/auth/magic-link", json={"email": "expire@example.com"})
    token = token_in((await outbox(services, "expire@example.com"))[0]["body"], path)
    clock.advance(minutes=14)
    assert (await client.post(path, json={"token": token})).status_code == 200


async def test_magic_link_does_not_reveal_accounts(
    client: httpx.AsyncClient, services: Services
) -> None:
    await signup(client, "exists@example.com")
    known = await client.post("/v1/auth/magic-link", json={"email": "exists@example.com"})
    unknown = await client.post("/v1/auth/magic-link", json={"email": "ghost@example.com"})
    assert stable(known) == stable(unknown)
    assert known.headers.keys() == unknown.headers.keys()
    # No account is created for an unknown address, and nothing is mailed to it.
    assert await outbox(services, "ghost@example.com") == []
    assert_error(await login(client, "ghost@example.com"), 401, "unauthorized")


# --- password recovery ---------------------------------------------------------------------


async def test_forgot_and_reset_password(client: httpx.AsyncClient, services: Services) -> None:
    tokens = await signup(client, "forgot@example.com")
    other = (await login(client, "forgot@example.com")).json()["data"]
    response = await client.post("/v1/auth/forgot-password", json={"email": "forgot@example.com"})
    assert response.status_code == 202
    mail = (await outbox(services, "forgot@example.com"))[0]
    link = link_in(mail["body"], "/v1/auth/reset-password")
    token = token_in(mail["body"], "/v1/auth/reset-password")
    # The mailed link lands on a check that does not use the token up.
    check = await client.get(link)
    assert check.status_code == 200, check.text
    assert check.json()["data"]["valid"] is True
    # What the reference client sends: the token in `access_token`.
    reset = await client.post(
        "/v1/auth/reset-password",
        json={"access_token": token, "new_password": "a-new-password"},
    )
    assert reset.status_code == 200, reset.text
    for old in (tokens, other):
        assert_error(await client.get("/v1/jobs", headers=bearer(old)), 401, "unauthorized")
    assert_error(await login(client, "forgot@example.com"), 401, "unauthorized")
    assert (await login(client, "forgot@example.com", "a-new-password")).status_code == 200
    again = await client.post(
        "/v1/auth/reset-password", json={"token": token, "new_password": "third-password"}
    )
    assert_error(again, 401, "unauthorized")  # single use
    assert_error(await client.get(link), 401, "unauthorized")
    kinds = [e.kind for e in await auth_events(services)]
    assert "auth.password.reset" in kinds


async def test_reset_with_the_token_field_and_a_weak_password(
    client: httpx.AsyncClient, services: Services
) -> None:
    await signup(client, "weak@example.com")
    await client.post("/v1/auth/forgot-password", json={"email": "weak@example.com"})
    token = token_in(
        (await outbox(services, "weak@example.com"))[0]["body"], "/v1/auth/reset-password"
    )
    weak = await client.post("/v1/auth/reset-password", json={"token": token, "new_password": "x"})
    assert_error(weak, 400, "validation_failed")
    # A refused password does not use the token up.
    ok = await client.post(
        "/v1/auth/reset-password", json={"token": token, "new_password": "strong-enough"}
    )
    assert ok.status_code == 200, ok.text
    missing = await client.post("/v1/auth/reset-password", json={"new_password": "strong-enough"})
    assert_error(missing, 400, "validation_failed")


async def test_forgot_password_does_not_reveal_accounts(
    client: httpx.AsyncClient, services: Services
) -> None:
    await signup(client, "real@example.com")
    known = await client.post("/v1/auth/forgot-password", json={"email": "real@example.com"})
    unknown = await client.post("/v1/auth/forgot-password", json={"email": "fake@example.com"})
    assert stable(known) == stable(unknown)
    assert await outbox(services, "fake@example.com") == []


async def test_tokens_only_serve_their_purpose(
    client: httpx.AsyncClient, services: Services
) -> None:
    await signup(client, "purpose@example.com")
    await client.post("/v1/auth/forgot-password", json={"email": "purpose@example.com"})
    await client.post("/v1/auth/magic-link", json={"email": "purpose@example.com"})
    mails = {m["subject"]: m["body"] for m in await outbox(services, "purpose@example.com")}
    verify = token_in(mails["Confirm your email address"], "/v1/auth/verify")
    reset = token_in(mails["Reset your Fabric password"], "/v1/auth/reset-password")
    magic = token_in(mails["Your Fabric sign-in link"], "/v1/auth/magic-link/verify")
    for wrong in (reset, magic):
        response = await client.post("/v1/auth/verify", json={"token": wrong})
        assert_error(response, 401, "unauthorized")
    for wrong in (verify, reset):
        response = await client.post("/v1/auth/magic-link/verify", json={"token": wrong})
        assert_error(response, 401, "unauthorized")
    for wrong in (verify, magic):
        response = await client.post(
            "/v1/auth/reset-password", json={"token": wrong, "new_password": "whatever-123"}
        )
        assert_error(response, 401, "unauthorized")
    # Each still works for its own purpose.
    assert (await client.post("/v1/auth/verify", json={"token": verify})).status_code == 200
    assert (
        await client.post("/v1/auth/magic-link/verify", json={"token": magic})
    ).status_code == 200
    reset_ok = await client.post(
        "/v1/auth/reset-password", json={"token": reset, "new_password": PASSWORD + "!"}
    )
    assert reset_ok.status_code == 200


async def test_mailed_tokens_are_stored_hashed(
    client: httpx.AsyncClient, services: Services
) -> None:
    tokens = await signup(client, "hashed@example.com")
    mailed = token_in((await outbox(services, "hashed@example.com"))[0]["body"], "/v1/auth/verify")
    async with services.db.read() as session:
        dump = repr(
            [
                tuple(row)
                for table in ("auth_one_time_tokens", "auth_refresh_tokens", "events")
                for row in (await session.execute(text(f"SELECT * FROM {table}"))).all()
            ]
        )
    for secret in (mailed, tokens["refresh_token"], tokens["access_token"]):
        assert secret not in dump
