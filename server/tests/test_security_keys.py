"""API keys never carry more power than whoever manages or makes them.

A key acts as its creator: handing its secret (rotate) or its fate (disable, delete) to
someone with less power would let them act above their role.
"""

from __future__ import annotations

from typing import Any

import httpx
from server_helpers import assert_error
from tenancy_helpers import User, add_member, create_org, data, verified_user

from fabric_server.services import Services


def bearer(key: dict[str, Any]) -> dict[str, str]:
    return {"authorization": f"Bearer {key['key']}"}


async def make_key(
    client: httpx.AsyncClient, headers: dict[str, str], org_id: str, **body: Any
) -> httpx.Response:
    body = {"name": "key", "organization_id": org_id, **body}
    return await client.post("/v1/api-keys", json=body, headers=headers)


async def owner_admin_org(
    client: httpx.AsyncClient, services: Services
) -> tuple[User, User, dict[str, Any]]:
    owner = await verified_user(client, services, "owner@example.com")
    org = await create_org(client, owner, "acme")
    admin = await add_member(client, services, owner, org["id"], "admin@example.com", "admin")
    return owner, admin, org


async def test_an_admin_cannot_take_over_an_owners_key(
    client: httpx.AsyncClient, services: Services
) -> None:
    owner, admin, org = await owner_admin_org(client, services)
    owners_key = data(await make_key(client, owner.headers, org["id"]), 201)
    key_id = owners_key["id"]
    for method, path in (
        ("POST", f"/v1/api-keys/{key_id}/rotate"),
        ("POST", f"/v1/api-keys/{key_id}/disable"),
        ("DELETE", f"/v1/api-keys/{key_id}"),
        ("GET", f"/v1/api-keys/{key_id}"),
    ):
        response = await client.request(method, path, headers=admin.headers)
        assert_error(response, 403, "forbidden")
    listed = data(await client.get("/v1/api-keys", headers=admin.headers))
    assert key_id not in [k["id"] for k in listed]
    # The owner's key still works, with the owner's secret; the admin is still an admin.
    me = data(await client.get("/v1/me", headers=bearer(owners_key)))
    assert me["principal_id"] == owner.id
    members = data(
        await client.get(f"/v1/organizations/{org['id']}/members", headers=owner.headers)
    )
    assert {m["principal_id"]: m["role"] for m in members}[admin.id] == "admin"
    # Equals and those above manage each other's keys as before.
    admins_key = data(await make_key(client, admin.headers, org["id"]), 201)
    rotated = await client.post(f"/v1/api-keys/{admins_key['id']}/rotate", headers=owner.headers)
    data(rotated)
    second_admin = await add_member(
        client, services, owner, org["id"], "admin2@example.com", "admin"
    )
    data(
        await client.post(f"/v1/api-keys/{admins_key['id']}/disable", headers=second_admin.headers)
    )


async def test_a_key_that_outranks_its_manager_after_a_promotion_is_protected(
    client: httpx.AsyncClient, services: Services
) -> None:
    owner, admin, org = await owner_admin_org(client, services)
    promoted = await add_member(client, services, owner, org["id"], "rising@example.com", "admin")
    key = data(await make_key(client, promoted.headers, org["id"]), 201)
    data(
        await client.patch(
            f"/v1/organizations/{org['id']}/members/{promoted.id}",
            json={"role": "owner"},
            headers=owner.headers,
        )
    )
    # The key now acts as an owner: the admin may no longer touch it.
    assert_error(
        await client.post(f"/v1/api-keys/{key['id']}/rotate", headers=admin.headers),
        403,
        "forbidden",
    )


async def test_a_key_acts_with_at_most_its_creators_current_role(
    client: httpx.AsyncClient, services: Services
) -> None:
    owner, admin, org = await owner_admin_org(client, services)
    second_owner = await add_member(
        client, services, owner, org["id"], "second@example.com", "owner"
    )
    key = data(await make_key(client, second_owner.headers, org["id"]), 201)
    data(
        await client.patch(
            f"/v1/organizations/{org['id']}/members/{second_owner.id}",
            json={"role": "admin"},
            headers=owner.headers,
        )
    )
    promote = await client.patch(
        f"/v1/organizations/{org['id']}/members/{admin.id}",
        json={"role": "owner"},
        headers=bearer(key),
    )
    assert_error(promote, 403, "forbidden")


async def test_a_scoped_key_makes_only_keys_within_its_scopes(
    client: httpx.AsyncClient, services: Services
) -> None:
    owner, _admin, org = await owner_admin_org(client, services)
    manager = data(
        await make_key(client, owner.headers, org["id"], scopes=["api_key.manage", "job.read"]),
        201,
    )
    for scopes in (["*"], ["*", "job.read"], ["job.create"], ["organization.delete"]):
        response = await make_key(client, bearer(manager), org["id"], scopes=scopes)
        assert_error(response, 403, "forbidden")
    # No scopes asked for: the new key gets the scopes of the key that made it.
    inherited = data(await make_key(client, bearer(manager), org["id"]), 201)
    assert inherited["scopes"] == ["api_key.manage", "job.read"]
    narrower = data(await make_key(client, bearer(manager), org["id"], scopes=["job.read"]), 201)
    assert narrower["scopes"] == ["job.read"]
    # Nor can it take over a wider key of the same person by rotating it.
    wide = data(await make_key(client, owner.headers, org["id"]), 201)
    for method, path in (
        ("POST", f"/v1/api-keys/{wide['id']}/rotate"),
        ("POST", f"/v1/api-keys/{wide['id']}/disable"),
        ("GET", f"/v1/api-keys/{wide['id']}"),
    ):
        assert_error(await client.request(method, path, headers=bearer(manager)), 403, "forbidden")
    listed = {k["id"] for k in data(await client.get("/v1/api-keys", headers=bearer(manager)))}
    assert listed == {manager["id"], inherited["id"], narrower["id"]}
    data(await client.post(f"/v1/api-keys/{narrower['id']}/rotate", headers=bearer(manager)))
