"""API keys: shown once, stored hashed, scoped, rotated, disabled, deleted, expiring."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
from auth_helpers import ManualClock, app_client
from server_helpers import assert_error
from sqlalchemy import select, update
from tenancy_helpers import User, add_member, create_org, data, events_of, verified_user

from fabric_server.access.models import ApiKey, Membership
from fabric_server.services import Services
from fabric_server.testing import fast_settings


def key_headers(key: dict[str, Any]) -> dict[str, str]:
    return {"authorization": f"Bearer {key['key']}"}


async def make_key(client: httpx.AsyncClient, by: User, org_id: str, **body: Any) -> dict[str, Any]:
    body = {"name": "ci-pipeline", "organization_id": org_id, **body}
    created: dict[str, Any] = data(
        await client.post("/v1/api-keys", json=body, headers=by.headers), 201
    )
    return created


async def owner_and_org(
    client: httpx.AsyncClient, services: Services
) -> tuple[User, dict[str, Any]]:
    owner = await verified_user(client, services, "owner@example.com")
    return owner, await create_org(client, owner, "acme")


async def test_the_key_is_shown_once_and_stored_as_a_hash(
    client: httpx.AsyncClient, services: Services
) -> None:
    owner, org = await owner_and_org(client, services)
    key = await make_key(client, owner, org["id"], scopes=["job.read"], description="CI")
    assert key["key"].startswith("fab_live_")
    assert key["key"].startswith(key["prefix"])
    assert len(key["key"]) > 40
    assert (key["name"], key["description"], key["scopes"]) == ("ci-pipeline", "CI", ["job.read"])
    assert (key["organization_id"], key["disabled"], key["last_used_at"]) == (
        org["id"],
        False,
        None,
    )
    listed = data(await client.get("/v1/api-keys", headers=owner.headers))
    assert [k["id"] for k in listed] == [key["id"]]
    assert "key" not in listed[0]
    fetched = data(await client.get(f"/v1/api-keys/{key['id']}", headers=owner.headers))
    assert fetched == listed[0]
    async with services.db.read() as session:
        row = (await session.scalars(select(ApiKey))).one()
    assert row.key_hash == hashlib.sha256(key["key"].encode()).hexdigest()
    assert key["key"] not in repr(row.__dict__)
    assert [e.kind for e in await events_of(services, "api_key.")] == ["api_key.created"]


async def test_a_key_acts_inside_its_organization_within_its_scopes(
    client: httpx.AsyncClient, services: Services
) -> None:
    owner, org = await owner_and_org(client, services)
    key = await make_key(client, owner, org["id"], scopes=["job.read", "job.create"])
    headers = key_headers(key)
    me = data(await client.get("/v1/me", headers=headers))
    assert (me["kind"], me["principal_id"], me["organization_id"], me["api_key_id"]) == (
        "api_key",
        owner.id,
        org["id"],
        key["id"],
    )
    job = data(
        await client.post(
            "/v1/jobs", json={"modality": "text", "input": {"prompt": "x"}}, headers=headers
        ),
        201,
    )
    assert job["organization_id"] == org["id"]  # no organization_id: the key's
    data(await client.get(f"/v1/jobs/{job['id']}", headers=headers))
    assert [o["id"] for o in data(await client.get("/v1/organizations", headers=headers))] == [
        org["id"]
    ]
    # Outside the scopes: 403; outside the organization: not found.
    body = {"organization_id": org["id"], "slug": "tt", "name": "T"}
    assert_error(await client.post("/v1/teams", json=body, headers=headers), 403, "forbidden")
    personal = next(
        o
        for o in data(await client.get("/v1/organizations", headers=owner.headers))
        if o["slug"] == "owner"
    )
    assert_error(
        await client.get(f"/v1/organizations/{personal['id']}", headers=headers), 404, "not_found"
    )
    check = {"action": "team.create"}
    result = data(await client.post("/v1/authz/check", json=check, headers=headers))
    assert (result["allowed"], result["reason"]) == (False, "outside_key_scopes")
    perms = data(await client.get("/v1/me/permissions", headers=headers))
    assert [(p["organization_id"], p["actions"]) for p in perms] == [
        (org["id"], ["job.create", "job.read"])
    ]
    assert_error(
        await client.post("/v1/organizations", json={"slug": "kk", "name": "K"}, headers=headers),
        403,
        "forbidden",
    )


async def test_a_key_without_scopes_follows_its_creators_role(
    client: httpx.AsyncClient, services: Services
) -> None:
    owner, org = await owner_and_org(client, services)
    admin = await add_member(client, services, owner, org["id"], "admin@example.com", "admin")
    key = await make_key(client, admin, org["id"])
    assert key["scopes"] == []
    body = {"organization_id": org["id"], "slug": "tt", "name": "T"}
    data(await client.post("/v1/teams", json=body, headers=key_headers(key)), 201)
    # The role is read at each use: demoted to viewer, the key can no longer do it.
    async with services.db.write() as session:
        await session.execute(
            update(Membership)
            .where(Membership.principal_id == admin.id, Membership.organization_id == org["id"])
            .values(role="viewer")
        )
    body["slug"] = "tt2"
    assert_error(
        await client.post("/v1/teams", json=body, headers=key_headers(key)), 403, "forbidden"
    )
    # Removed from the organization, the key stops working altogether.
    async with services.db.write() as session:
        await session.execute(
            update(Membership).where(Membership.principal_id == admin.id).values(active=False)
        )
    assert_error(await client.get("/v1/me", headers=key_headers(key)), 401, "unauthorized")


async def test_scopes_cannot_exceed_the_creators_actions(
    client: httpx.AsyncClient, services: Services
) -> None:
    owner, org = await owner_and_org(client, services)
    admin = await add_member(client, services, owner, org["id"], "admin@example.com", "admin")
    member = await add_member(client, services, owner, org["id"], "m@example.com", "member")
    body = {"name": "k", "organization_id": org["id"], "scopes": ["organization.delete"]}
    response = await client.post("/v1/api-keys", json=body, headers=admin.headers)
    assert_error(response, 403, "forbidden")
    body["scopes"] = ["teleport"]
    assert_error(
        await client.post("/v1/api-keys", json=body, headers=admin.headers),
        400,
        "validation_failed",
    )
    body["scopes"] = ["read", "*"]
    created = data(await client.post("/v1/api-keys", json=body, headers=admin.headers), 201)
    assert created["scopes"] == ["*", "organization.read"]
    body["scopes"] = ["job.read"]
    assert_error(
        await client.post("/v1/api-keys", json=body, headers=member.headers), 403, "forbidden"
    )
    assert data(await client.get("/v1/api-keys", headers=member.headers)) == []


async def test_rotation_disable_and_delete(client: httpx.AsyncClient, services: Services) -> None:
    owner, org = await owner_and_org(client, services)
    key = await make_key(client, owner, org["id"])
    rotated = data(await client.post(f"/v1/api-keys/{key['id']}/rotate", headers=owner.headers))
    assert rotated["id"] == key["id"]
    assert rotated["key"] != key["key"]
    assert rotated["rotated_at"] is not None
    assert_error(await client.get("/v1/me", headers=key_headers(key)), 401, "unauthorized")
    data(await client.get("/v1/me", headers=key_headers(rotated)))

    disabled = data(await client.post(f"/v1/api-keys/{key['id']}/disable", headers=owner.headers))
    assert disabled["disabled"] is True
    body = assert_error(
        await client.get("/v1/me", headers=key_headers(rotated)), 401, "unauthorized"
    )
    assert "disabled" in body["error"]["message"]

    second = await make_key(client, owner, org["id"], name="second")
    data(await client.delete(f"/v1/api-keys/{second['id']}", headers=owner.headers))
    assert_error(await client.get("/v1/me", headers=key_headers(second)), 401, "unauthorized")
    assert_error(
        await client.get(f"/v1/api-keys/{second['id']}", headers=owner.headers), 404, "not_found"
    )
    assert [e.kind for e in await events_of(services, "api_key.")] == [
        "api_key.created",
        "api_key.rotated",
        "api_key.disabled",
        "api_key.created",
        "api_key.deleted",
    ]
    junk = {"authorization": "Bearer fab_live_not_a_key"}
    assert_error(await client.get("/v1/me", headers=junk), 401, "unauthorized")


async def test_expiry_and_last_used(database_url: str, tmp_path: Path) -> None:
    clock = ManualClock()
    async with app_client(fast_settings(database_url, tmp_path)) as (client, services):
        services.api_keys.clock = clock
        owner, org = await owner_and_org(client, services)
        key = await make_key(client, owner, org["id"], expires_in_days=1)
        assert key["expires_at"] is not None
        headers = key_headers(key)
        data(await client.get("/v1/me", headers=headers))
        first = data(await client.get(f"/v1/api-keys/{key['id']}", headers=owner.headers))
        assert first["last_used_at"] is not None
        clock.advance(seconds=30)
        data(await client.get("/v1/me", headers=headers))
        same = data(await client.get(f"/v1/api-keys/{key['id']}", headers=owner.headers))
        assert same["last_used_at"] == first["last_used_at"]  # at most once a minute
        clock.advance(seconds=31)
        data(await client.get("/v1/me", headers=headers))
        later = data(await client.get(f"/v1/api-keys/{key['id']}", headers=owner.headers))
        assert later["last_used_at"] > first["last_used_at"]

        clock.advance(days=1)
        body = assert_error(await client.get("/v1/me", headers=headers), 401, "unauthorized")
        assert "expired" in body["error"]["message"]
        past = {"name": "p", "organization_id": org["id"], "expires_at": "2001-01-01T00:00:00Z"}
        assert_error(
            await client.post("/v1/api-keys", json=past, headers=owner.headers),
            422,
            "validation_failed",
        )
        both = {**past, "expires_at": "2999-01-01T00:00:00Z", "expires_in_days": 3}
        assert_error(
            await client.post("/v1/api-keys", json=both, headers=owner.headers),
            400,
            "validation_failed",
        )


async def test_keys_of_other_organizations_are_not_found(
    client: httpx.AsyncClient, services: Services
) -> None:
    owner, org = await owner_and_org(client, services)
    key = await make_key(client, owner, org["id"])
    other = await verified_user(client, services, "other@example.com")
    for method, path in (
        ("GET", f"/v1/api-keys/{key['id']}"),
        ("POST", f"/v1/api-keys/{key['id']}/rotate"),
        ("POST", f"/v1/api-keys/{key['id']}/disable"),
        ("DELETE", f"/v1/api-keys/{key['id']}"),
    ):
        assert_error(await client.request(method, path, headers=other.headers), 404, "not_found")
    assert data(await client.get("/v1/api-keys", headers=other.headers)) == []
    data(await client.get("/v1/me", headers=key_headers(key)))  # untouched


async def test_production_accepts_api_keys(database_url: str, tmp_path: Path) -> None:
    settings = fast_settings(
        database_url,
        tmp_path,
        env="production",
        signing_secret="s" * 32,
        secrets_master_key="k" * 32,
    )
    async with app_client(settings) as (client, services):
        owner, org = await owner_and_org(client, services)
        key = await make_key(client, owner, org["id"], scopes=["organization.read"])
        got = data(await client.get(f"/v1/organizations/{org['id']}", headers=key_headers(key)))
        assert got["id"] == org["id"]
        assert_error(await client.get(f"/v1/organizations/{org['id']}"), 401, "unauthorized")
