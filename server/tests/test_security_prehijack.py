"""Account pre-hijacking: someone registers an address they do not own and waits.

Whoever later proves control of the mailbox through a mailed link owns the account from then
on: every session, the password and the API keys set up before that proof stop working. An
invitation never verifies an account it was not mailed to.
"""

from __future__ import annotations

from typing import Any

import httpx
from auth_helpers import PASSWORD, bearer, link_in, login, outbox, signup, token_in
from server_helpers import assert_error
from tenancy_helpers import create_org, data, events_of, invite, verified_user

from fabric_server.services import Services

VICTIM = "victim@corp.example"


async def squat(client: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, str]]:
    """The attacker signs up with the victim's address and makes an API key there."""
    tokens = await signup(client, VICTIM, "attacker-password")
    orgs = data(await client.get("/v1/organizations", headers=bearer(tokens)))
    key = data(
        await client.post(
            "/v1/api-keys",
            json={"name": "backdoor", "organization_id": orgs[0]["id"]},
            headers=bearer(tokens),
        ),
        201,
    )
    return tokens, {"authorization": f"Bearer {key['key']}"}


async def assert_locked_out(
    client: httpx.AsyncClient, tokens: dict[str, Any], key_headers: dict[str, str]
) -> None:
    assert_error(await client.get("/v1/me", headers=bearer(tokens)), 401, "unauthorized")
    refreshed = await client.post(
        "/v1/auth/token/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert_error(refreshed, 401, "unauthorized")
    assert_error(await login(client, VICTIM, "attacker-password"), 401, "unauthorized")
    assert_error(await client.get("/v1/me", headers=key_headers), 401, "unauthorized")


async def test_the_verification_link_opened_by_the_mailbox_owner_ends_the_squat(
    client: httpx.AsyncClient, services: Services
) -> None:
    tokens, key_headers = await squat(client)
    link = link_in((await outbox(services, VICTIM))[0]["body"], "/v1/auth/verify")
    verified = data(await client.get(link))  # the owner opens the mail, without a session
    assert verified["email_verified"] is True
    await assert_locked_out(client, tokens, key_headers)
    # The owner takes the account over with a reset link.
    await client.post("/v1/auth/forgot-password", json={"email": VICTIM})
    reset = token_in((await outbox(services, VICTIM))[0]["body"], "/v1/auth/reset-password")
    data(
        await client.post(
            "/v1/auth/reset-password", json={"token": reset, "new_password": "owners-password"}
        )
    )
    assert (await login(client, VICTIM, "owners-password")).status_code == 200
    claimed = [e for e in await events(services) if e["kind"] == "auth.email.claimed"]
    assert len(claimed) == 1
    assert claimed[0]["payload"]["via"] == "verification"


async def test_verifying_while_signed_in_keeps_the_password_and_session(
    client: httpx.AsyncClient, services: Services
) -> None:
    tokens = await signup(client, "honest@example.com")
    token = token_in((await outbox(services, "honest@example.com"))[0]["body"], "/v1/auth/verify")
    response = await client.post("/v1/auth/verify", json={"token": token}, headers=bearer(tokens))
    assert data(response)["email_verified"] is True
    assert (await client.get("/v1/me", headers=bearer(tokens))).status_code == 200
    assert (await login(client, "honest@example.com", PASSWORD)).status_code == 200


async def test_someone_elses_session_does_not_keep_the_squatters_password(
    client: httpx.AsyncClient, services: Services
) -> None:
    tokens, key_headers = await squat(client)
    bystander = await verified_user(client, services, "bystander@example.com")
    token = token_in((await outbox(services, VICTIM))[0]["body"], "/v1/auth/verify")
    data(await client.post("/v1/auth/verify", json={"token": token}, headers=bystander.headers))
    await assert_locked_out(client, tokens, key_headers)


async def test_a_magic_link_to_a_squatted_address_ends_the_squat(
    client: httpx.AsyncClient, services: Services
) -> None:
    tokens, key_headers = await squat(client)
    await client.post("/v1/auth/magic-link", json={"email": VICTIM})
    link = link_in((await outbox(services, VICTIM))[0]["body"], "/v1/auth/magic-link/verify")
    owner = data(await client.get(link))
    await assert_locked_out(client, tokens, key_headers)
    assert (await client.get("/v1/me", headers=bearer(owner))).status_code == 200


async def test_a_reset_of_a_squatted_address_also_disables_its_keys(
    client: httpx.AsyncClient, services: Services
) -> None:
    tokens, key_headers = await squat(client)
    await client.post("/v1/auth/forgot-password", json={"email": VICTIM})
    reset = token_in((await outbox(services, VICTIM))[0]["body"], "/v1/auth/reset-password")
    body = {"token": reset, "new_password": "owners-password"}
    data(await client.post("/v1/auth/reset-password", json=body))
    await assert_locked_out(client, tokens, key_headers)


async def test_an_invitation_never_verifies_a_squatted_account(
    client: httpx.AsyncClient, services: Services
) -> None:
    tokens, key_headers = await squat(client)
    admin = await verified_user(client, services, "admin@corp.example")
    org = await create_org(client, admin, "corp")
    invitation = data(await invite(client, admin, org["id"], VICTIM, "admin"), 201)
    accept = link_in(
        (await outbox(services, VICTIM))[0]["body"], f"/v1/invitations/{invitation['id']}/accept"
    )
    assert_error(await client.get(accept), 403, "email_not_verified")
    mine = data(await client.get("/v1/organizations", headers=bearer(tokens)))
    assert org["id"] not in [o["id"] for o in mine]
    members = data(
        await client.get(f"/v1/organizations/{org['id']}/members", headers=admin.headers)
    )
    assert tokens["user"]["id"] not in [m["principal_id"] for m in members]
    # The owner gets a verification link instead; once it is used, the invitation works.
    verify = link_in((await outbox(services, VICTIM))[0]["body"], "/v1/auth/verify")
    data(await client.get(verify))
    await assert_locked_out(client, tokens, key_headers)
    joined = data(await client.get(accept))
    assert (joined["organization_id"], joined["role"]) == (org["id"], "admin")


async def events(services: Services) -> list[dict[str, Any]]:
    return [{"kind": e.kind, "payload": e.payload} for e in await events_of(services, "auth.")]
