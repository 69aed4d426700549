"""Invitations: create, mail, accept both ways, revoke, expiry and limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from auth_helpers import ManualClock, app_client, bearer, link_in, outbox, signup, token_in
from server_helpers import assert_error
from tenancy_helpers import User, create_org, data, events_of, invite, verified_user

from fabric_server.services import Services
from fabric_server.testing import fast_settings


async def owner_and_org(
    client: httpx.AsyncClient, services: Services
) -> tuple[User, dict[str, Any]]:
    owner = await verified_user(client, services, "owner@example.com")
    return owner, await create_org(client, owner, "acme")


async def test_create_mails_a_link_and_accepting_signed_in_joins(
    client: httpx.AsyncClient, services: Services
) -> None:
    owner, org = await owner_and_org(client, services)
    new = await verified_user(client, services, "new@example.com")
    inv = data(await invite(client, owner, org["id"], "New@Example.com", "admin"), 201)
    assert set(inv) >= {"id", "organization_id", "team_id", "email", "role", "status"}
    assert (inv["email"], inv["role"], inv["status"], inv["team_id"]) == (
        "new@example.com",
        "admin",
        "pending",
        None,
    )
    assert inv["expires_at"] > inv["created_at"]
    mail = (await outbox(services, "new@example.com"))[0]
    assert mail["subject"] == "Join Acme on Fabric"
    assert f"/v1/invitations/{inv['id']}/accept?token=" in mail["body"]

    accepted = data(await client.post(f"/v1/invitations/{inv['id']}/accept", headers=new.headers))
    assert (accepted["principal_id"], accepted["role"], accepted["invitation_id"]) == (
        new.id,
        "admin",
        inv["id"],
    )
    assert accepted["email"] == "new@example.com"
    orgs = data(await client.get("/v1/me/organizations", headers=new.headers))
    assert {"acme": "admin"}.items() <= {o["slug"]: o["role"] for o in orgs}.items()
    listed = data(
        await client.get(
            "/v1/invitations", params={"organization_id": org["id"]}, headers=owner.headers
        )
    )
    assert [(i["id"], i["status"]) for i in listed] == [(inv["id"], "accepted")]
    again = await client.post(f"/v1/invitations/{inv['id']}/accept", headers=new.headers)
    assert_error(again, 409, "invitation_already_accepted")
    kinds = [e.kind for e in await events_of(services, "invitation.")]
    assert kinds == ["invitation.created", "invitation.accepted"]


async def test_accepting_needs_the_invited_verified_email(
    client: httpx.AsyncClient, services: Services
) -> None:
    owner, org = await owner_and_org(client, services)
    inv = data(await invite(client, owner, org["id"], "new@example.com"), 201)
    other = await verified_user(client, services, "other@example.com")
    response = await client.post(f"/v1/invitations/{inv['id']}/accept", headers=other.headers)
    assert_error(response, 403, "forbidden")
    unverified = bearer(await signup(client, "new@example.com"))
    response = await client.post(f"/v1/invitations/{inv['id']}/accept", headers=unverified)
    body = assert_error(response, 403, "forbidden")
    assert "Verify your email" in body["error"]["message"]
    assert_error(
        await client.post("/v1/invitations/nope/accept", headers=other.headers), 404, "not_found"
    )


async def test_duplicates_and_existing_members_conflict(
    client: httpx.AsyncClient, services: Services
) -> None:
    owner, org = await owner_and_org(client, services)
    data(await invite(client, owner, org["id"], "new@example.com"), 201)
    assert_error(await invite(client, owner, org["id"], "NEW@example.com"), 409, "conflict")
    assert_error(await invite(client, owner, org["id"], "owner@example.com"), 409, "conflict")
    assert_error(await invite(client, owner, org["id"], "not-an-email"), 400, "validation_failed")
    assert_error(
        await invite(client, owner, org["id"], "x@example.com", "superuser"),
        400,
        "validation_failed",
    )


async def test_only_admins_invite_and_never_above_their_role(
    client: httpx.AsyncClient, services: Services
) -> None:
    owner, org = await owner_and_org(client, services)
    admin = await verified_user(client, services, "admin@example.com")
    inv = data(await invite(client, owner, org["id"], admin.email, "admin"), 201)
    data(await client.post(f"/v1/invitations/{inv['id']}/accept", headers=admin.headers))
    member = await verified_user(client, services, "member@example.com")
    inv = data(await invite(client, admin, org["id"], member.email, "member"), 201)
    data(await client.post(f"/v1/invitations/{inv['id']}/accept", headers=member.headers))

    assert_error(
        await invite(client, admin, org["id"], "boss@example.com", "owner"), 403, "forbidden"
    )
    assert_error(await invite(client, member, org["id"], "x@example.com"), 403, "forbidden")
    stranger = await verified_user(client, services, "stranger@example.com")
    assert_error(await invite(client, stranger, org["id"], "x@example.com"), 404, "not_found")


async def test_revoked_invitations_are_gone(client: httpx.AsyncClient, services: Services) -> None:
    owner, org = await owner_and_org(client, services)
    new = await verified_user(client, services, "new@example.com")
    inv = data(await invite(client, owner, org["id"], new.email), 201)
    revoked = data(await client.post(f"/v1/invitations/{inv['id']}/revoke", headers=owner.headers))
    assert revoked["status"] == "revoked"
    assert revoked["revoked_at"] is not None
    response = await client.post(f"/v1/invitations/{inv['id']}/accept", headers=new.headers)
    assert_error(response, 410, "invitation_revoked")
    link = link_in(
        (await outbox(services, new.email))[0]["body"], f"/v1/invitations/{inv['id']}/accept"
    )
    assert_error(await client.get(link), 410, "invitation_revoked")
    # Revoking again changes nothing; a new invitation may be sent.
    again = data(await client.post(f"/v1/invitations/{inv['id']}/revoke", headers=owner.headers))
    assert again == revoked
    data(await invite(client, owner, org["id"], new.email), 201)
    assert [e.kind for e in await events_of(services, "invitation.revoked")] == [
        "invitation.revoked"
    ]


async def test_revoking_an_accepted_invitation_keeps_the_member(
    client: httpx.AsyncClient, services: Services
) -> None:
    owner, org = await owner_and_org(client, services)
    new = await verified_user(client, services, "new@example.com")
    inv = data(await invite(client, owner, org["id"], new.email), 201)
    data(await client.post(f"/v1/invitations/{inv['id']}/accept", headers=new.headers))
    after = data(await client.post(f"/v1/invitations/{inv['id']}/revoke", headers=owner.headers))
    assert after["status"] == "accepted"
    data(await client.get(f"/v1/organizations/{org['id']}", headers=new.headers))


async def test_the_mailed_link_accepts_and_is_single_use(
    client: httpx.AsyncClient, services: Services
) -> None:
    owner, org = await owner_and_org(client, services)
    body = {"slug": "eng", "name": "Eng", "organization_id": org["id"]}
    team = data(await client.post("/v1/teams", json=body, headers=owner.headers), 201)
    inv = data(
        await invite(client, owner, org["id"], "fresh@example.com", "viewer", team_id=team["id"]),
        201,
    )
    link = link_in((await outbox(services, "fresh@example.com"))[0]["body"], "/accept")
    path = urlsplit(link).path + "?" + urlsplit(link).query
    accepted = data(await client.get(path))
    # No account existed: one was made for the (now proven) address.
    assert (accepted["email"], accepted["role"], accepted["organization_id"]) == (
        "fresh@example.com",
        "viewer",
        org["id"],
    )
    assert_error(await client.get(path), 409, "invitation_already_accepted")
    assert_error(
        await client.get(f"/v1/invitations/{inv['id']}/accept", params={"token": "forged"}),
        404,
        "not_found",
    )
    # The new account can sign in by magic link and sees the organization and the team.
    await client.post("/v1/auth/magic-link", json={"email": "fresh@example.com"})
    magic = link_in((await outbox(services, "fresh@example.com"))[0]["body"], "/magic-link/verify")
    tokens = data(await client.get(urlsplit(magic).path + "?" + urlsplit(magic).query))
    assert tokens["user"]["email_verified"] is True
    teams = data(await client.get("/v1/me/teams", headers=bearer(tokens)))
    assert [(t["id"], t["role"]) for t in teams] == [(team["id"], "viewer")]


async def test_the_link_has_an_unverified_account_confirm_its_address_first(
    client: httpx.AsyncClient, services: Services
) -> None:
    owner, org = await owner_and_org(client, services)
    tokens = await signup(client, "late@example.com")
    data(await invite(client, owner, org["id"], "late@example.com"), 201)
    link = link_in((await outbox(services, "late@example.com"))[0]["body"], "/accept")
    accept = urlsplit(link).path + "?" + urlsplit(link).query
    # The invitation was mailed to the address, not to that account: it verifies nothing,
    # and the account's own verification link is mailed again.
    assert_error(await client.get(accept), 403, "email_not_verified")
    verify = token_in((await outbox(services, "late@example.com"))[0]["body"], "/v1/auth/verify")
    data(await client.post("/v1/auth/verify", json={"token": verify}, headers=bearer(tokens)))
    accepted = data(await client.get(accept))
    assert accepted["principal_id"] == tokens["user"]["id"]
    me = data(await client.get("/v1/me", headers=bearer(tokens)))
    assert me["email_verified"] is True


async def test_expired_invitations(database_url: str, tmp_path: Path) -> None:
    clock = ManualClock()
    settings = fast_settings(database_url, tmp_path, invitation_ttl_seconds=3600)
    async with app_client(settings) as (client, services):
        services.invitations.clock = clock
        owner, org = await owner_and_org(client, services)
        new = await verified_user(client, services, "new@example.com")
        inv = data(await invite(client, owner, org["id"], new.email), 201)
        clock.advance(seconds=3601)
        response = await client.post(f"/v1/invitations/{inv['id']}/accept", headers=new.headers)
        assert_error(response, 410, "invitation_expired")
        fetched = data(await client.get(f"/v1/invitations/{inv['id']}", headers=owner.headers))
        assert fetched["status"] == "expired"
        # An expired invitation no longer blocks a new one.
        fresh = data(await invite(client, owner, org["id"], new.email), 201)
        data(await client.post(f"/v1/invitations/{fresh['id']}/accept", headers=new.headers))


async def test_hourly_and_pending_limits(database_url: str, tmp_path: Path) -> None:
    clock = ManualClock()
    settings = fast_settings(
        database_url, tmp_path, invitation_max_per_hour=3, invitation_max_pending=4
    )
    async with app_client(settings) as (client, services):
        services.invitations.clock = clock
        owner, org = await owner_and_org(client, services)
        for n in range(3):
            data(await invite(client, owner, org["id"], f"u{n}@example.com"), 201)
            clock.advance(minutes=10)
        response = await invite(client, owner, org["id"], "u3@example.com")
        assert_error(response, 429, "rate_limited")
        assert response.headers["retry-after"] == str(30 * 60)  # when the first leaves the hour
        clock.advance(minutes=31)
        data(await invite(client, owner, org["id"], "u3@example.com"), 201)
        clock.advance(hours=2)
        response = await invite(client, owner, org["id"], "u4@example.com")
        body = assert_error(response, 429, "rate_limited")
        assert "pending" in body["error"]["message"]
        assert int(response.headers["retry-after"]) > 0
        # Other organizations have their own budget.
        other = await create_org(client, owner, "other")
        data(await invite(client, owner, other["id"], "u4@example.com"), 201)


async def test_redirect_after_the_mailed_link(database_url: str, tmp_path: Path) -> None:
    settings = fast_settings(
        database_url, tmp_path, invite_redirect_url="https://app.example.com/joined?from=mail"
    )
    async with app_client(settings) as (client, services):
        owner, org = await owner_and_org(client, services)
        inv = data(await invite(client, owner, org["id"], "r@example.com"), 201)
        link = link_in((await outbox(services, "r@example.com"))[0]["body"], "/accept")
        path = urlsplit(link).path + "?" + urlsplit(link).query
        response = await client.get(path)
        assert response.status_code == 302
        target = urlsplit(response.headers["location"])
        assert (target.netloc, target.path) == ("app.example.com", "/joined")
        assert parse_qs(target.query) == {
            "from": ["mail"],
            "invitation_id": [inv["id"]],
            "organization_id": [org["id"]],
            "status": ["accepted"],
        }
        again = await client.get(path)
        assert again.status_code == 302
        assert parse_qs(urlsplit(again.headers["location"]).query)["error"] == [
            "invitation_already_accepted"
        ]


async def test_dev_principals_may_accept_for_testing(
    client: httpx.AsyncClient, services: Services
) -> None:
    org = data(await client.post("/v1/organizations", json={"slug": "devco", "name": "D"}), 201)
    inv = data(
        await client.post(
            "/v1/invitations", json={"organization_id": org["id"], "email": "new@example.com"}
        ),
        201,
    )
    guest = {"x-principal-id": "0190a0a0-0000-7000-8000-000000000099"}
    accepted = data(await client.post(f"/v1/invitations/{inv['id']}/accept", headers=guest))
    assert (accepted["principal_id"], accepted["role"]) == (guest["x-principal-id"], "member")
    orgs = data(await client.get("/v1/me/organizations", headers=guest))
    assert {o["slug"] for o in orgs} == {"devco", "default"}


async def test_the_anonymous_dev_owner_runs_the_spec_sequence(client: httpx.AsyncClient) -> None:
    # create → accept → revoke, as the product spec writes it, with no credentials.
    org = data(await client.post("/v1/organizations", json={"slug": "acme", "name": "Acme"}), 201)
    body = {"organization_id": org["id"], "email": "new@example.com", "role": "member"}
    inv = data(await client.post("/v1/invitations", json=body), 201)
    kept = data(await client.post(f"/v1/invitations/{inv['id']}/accept"))
    assert kept["role"] == "owner"  # already a member: the membership is kept as it was
    assert data(await client.post(f"/v1/invitations/{inv['id']}/revoke"))["status"] == "accepted"
