"""Organizations, members, teams and the caller's identity, over HTTP."""

from __future__ import annotations

import httpx
import pytest
from server_helpers import assert_error
from tenancy_helpers import add_member, create_org, data, events_of, verified_user

from fabric_server.services import Services
from fabric_server.settings import DEFAULT_ORGANIZATION_ID, DEV_OWNER_ID


async def test_create_organization_makes_the_caller_its_owner(
    client: httpx.AsyncClient, services: Services
) -> None:
    ada = await verified_user(client, services, "ada@example.com")
    response = await client.post(
        "/v1/organizations", json={"slug": "acme", "name": "Acme Corp"}, headers=ada.headers
    )
    org = data(response, 201)
    assert set(org) == {"id", "slug", "name", "archived", "created_at", "updated_at"}
    assert (org["slug"], org["name"], org["archived"]) == ("acme", "Acme Corp", False)
    assert response.json()["meta"]["status"] == 201

    assert data(await client.get(f"/v1/organizations/{org['id']}", headers=ada.headers)) == org
    members = data(await client.get(f"/v1/organizations/{org['id']}/members", headers=ada.headers))
    assert [(m["principal_id"], m["role"], m["email"]) for m in members] == [
        (ada.id, "owner", "ada@example.com")
    ]
    assert set(members[0]) == {
        "id",
        "principal_id",
        "organization_id",
        "team_id",
        "role",
        "active",
        "created_at",
        "email",
        "display_name",
    }
    kinds = [(e.kind, e.organization_id) for e in await events_of(services, "organization.")]
    assert kinds == [("organization.created", org["id"])]
    created = await events_of(services, "membership.")
    assert created[-1].payload == {"principal_id": ada.id, "role": "owner", "via": kinds[0][0]}


@pytest.mark.parametrize(
    "slug", ["A", "a", "UPPER", "with space", "-lead", "trail-", "x" * 65, "ünï", "a_b"]
)
async def test_invalid_slugs_are_refused(client: httpx.AsyncClient, slug: str) -> None:
    response = await client.post("/v1/organizations", json={"slug": slug, "name": "X"})
    assert_error(response, 400, "validation_failed")


async def test_slugs_are_unique(client: httpx.AsyncClient) -> None:
    assert data(await client.post("/v1/organizations", json={"slug": "ab", "name": "A"}), 201)
    again = await client.post("/v1/organizations", json={"slug": "ab", "name": "B"})
    assert_error(again, 409, "conflict")
    assert_error(
        await client.post("/v1/organizations", json={"slug": "default", "name": "D"}),
        409,
        "conflict",
    )


async def test_list_organizations_is_the_callers(
    client: httpx.AsyncClient, services: Services
) -> None:
    ada = await verified_user(client, services, "ada@example.com")
    bob = await verified_user(client, services, "bob@example.com")
    acme = await create_org(client, ada, "acme")
    await create_org(client, bob, "bobco")
    listed = data(await client.get("/v1/organizations", headers=ada.headers))
    slugs = {o["slug"]: o["role"] for o in listed}
    # Personal organization, the new one, and (dev mode) the default one.
    assert slugs["acme"] == "owner"
    assert slugs["ada"] == "owner"
    assert slugs["default"] == "admin"
    assert "bobco" not in slugs
    assert_error(
        await client.get(f"/v1/organizations/{acme['id']}", headers=bob.headers), 404, "not_found"
    )
    assert_error(
        await client.get(f"/v1/organizations/{acme['id']}/members", headers=bob.headers),
        404,
        "not_found",
    )
    assert_error(await client.get("/v1/organizations/nope", headers=ada.headers), 404, "not_found")


async def test_teams(client: httpx.AsyncClient, services: Services) -> None:
    ada = await verified_user(client, services, "ada@example.com")
    org = await create_org(client, ada, "acme")
    body = {"organization_id": org["id"], "slug": "engineering", "name": "Engineering"}
    team = data(await client.post("/v1/teams", json=body, headers=ada.headers), 201)
    assert set(team) == {"id", "organization_id", "slug", "name", "archived", "created_at"}
    assert (team["organization_id"], team["slug"], team["archived"]) == (
        org["id"],
        "engineering",
        False,
    )
    assert_error(await client.post("/v1/teams", json=body, headers=ada.headers), 409, "conflict")
    # Slugs are unique per organization only.
    other = await create_org(client, ada, "other")
    data(
        await client.post(
            "/v1/teams", json={**body, "organization_id": other["id"]}, headers=ada.headers
        ),
        201,
    )
    listed = data(await client.get(f"/v1/organizations/{org['id']}/teams", headers=ada.headers))
    assert listed == [team]
    assert data(await client.get(f"/v1/teams/{team['id']}", headers=ada.headers)) == team
    mine = data(await client.get("/v1/me/teams", headers=ada.headers))
    assert {(t["slug"], t["organization_id"], t["role"]) for t in mine} == {
        ("engineering", org["id"], "owner"),
        ("engineering", other["id"], "owner"),
    }
    team_events = await events_of(services, "team.created")
    assert [e.payload["team_id"] for e in team_events] == [
        team["id"],
        team_events[1].payload["team_id"],
    ]


async def test_members_cannot_create_teams(client: httpx.AsyncClient, services: Services) -> None:
    owner = await verified_user(client, services, "owner@example.com")
    org = await create_org(client, owner, "acme")
    member = await add_member(client, services, owner, org["id"], "m@example.com", "member")
    body = {"organization_id": org["id"], "slug": "eng", "name": "Eng"}
    response = await client.post("/v1/teams", json=body, headers=member.headers)
    assert_error(response, 403, "forbidden")
    members = data(
        await client.get(f"/v1/organizations/{org['id']}/members", headers=member.headers)
    )
    assert {(m["email"], m["role"]) for m in members} == {
        ("owner@example.com", "owner"),
        ("m@example.com", "member"),
    }


async def test_me_for_a_signed_in_user(client: httpx.AsyncClient, services: Services) -> None:
    ada = await verified_user(client, services, "ada@example.com")
    me = data(await client.get("/v1/me", headers=ada.headers))
    assert me == {
        "principal_id": ada.id,
        "authenticated": True,
        "kind": "user",
        "email": "ada@example.com",
        "display_name": None,
        "email_verified": True,
        "organization_id": None,
        "api_key_id": None,
        "platform_admin": False,
    }
    orgs = data(await client.get("/v1/me/organizations", headers=ada.headers))
    assert all(set(o) == {"id", "slug", "name", "archived", "role"} for o in orgs)
    assert {o["slug"]: o["role"] for o in orgs} == {"ada": "owner", "default": "admin"}
    perms = data(await client.get("/v1/me/permissions", headers=ada.headers))
    by_org = {p["organization_id"]: p for p in perms}
    default = by_org[DEFAULT_ORGANIZATION_ID]
    assert default["role"] == "admin"
    assert default["team_id"] is None
    assert "member.invite" in default["actions"]
    assert "organization.delete" not in default["actions"]
    personal = next(p for org_id, p in by_org.items() if org_id != DEFAULT_ORGANIZATION_ID)
    assert "organization.delete" in personal["actions"]


async def test_me_for_the_anonymous_dev_owner(client: httpx.AsyncClient) -> None:
    me = data(await client.get("/v1/me"))
    assert me["principal_id"] == DEV_OWNER_ID
    assert me["authenticated"] is False
    assert me["kind"] == "dev"
    assert me["display_name"] == "Dev owner"
    assert me["platform_admin"] is True
    orgs = data(await client.get("/v1/me/organizations"))
    assert [(o["id"], o["role"]) for o in orgs] == [(DEFAULT_ORGANIZATION_ID, "owner")]
    assert data(await client.get("/v1/me/teams")) == []
