"""Managing an organization: renaming it, archiving it, changing roles, removing members."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from schedule_helpers import at, harness
from server_helpers import assert_error
from tenancy_helpers import User, add_member, create_org, data, events_of, invite, verified_user

from fabric_server.services import Services
from fabric_server.settings import DEFAULT_ORGANIZATION_ID, Settings


async def audit_actions(client: httpx.AsyncClient, owner: User, org_id: str) -> list[Any]:
    logs = data(await client.get(f"/v1/organizations/{org_id}/audit-logs", headers=owner.headers))
    return [(row["action"], row["resource_id"], row["actor_id"]) for row in logs["items"]]


# --- rename and slug ---------------------------------------------------------------------


async def test_rename_and_change_the_slug(client: httpx.AsyncClient, services: Services) -> None:
    ada = await verified_user(client, services, "ada@example.com")
    org = await create_org(client, ada, "acme")
    await create_org(client, ada, "taken")
    path = f"/v1/organizations/{org['id']}"

    renamed = data(
        await client.patch(path, json={"name": "Acme Inc", "slug": "acme-inc"}, headers=ada.headers)
    )
    assert (renamed["id"], renamed["name"], renamed["slug"]) == (org["id"], "Acme Inc", "acme-inc")
    assert renamed["updated_at"] > org["updated_at"]
    assert data(await client.get(path, headers=ada.headers)) == renamed
    # Fields left out stay; the old slug is free again.
    assert data(await client.patch(path, json={"name": "Acme"}, headers=ada.headers))["slug"] == (
        "acme-inc"
    )
    await create_org(client, ada, "acme")

    taken = await client.patch(path, json={"slug": "taken"}, headers=ada.headers)
    assert_error(taken, 409, "conflict")
    for bad in ({"slug": "Not A Slug"}, {"slug": "x"}, {"name": ""}, {"name": "n" * 201}):
        assert_error(
            await client.patch(path, json=bad, headers=ada.headers), 400, "validation_failed"
        )
    # Nothing to change: the organization as it is, and no event.
    same = data(await client.patch(path, json={"slug": "acme-inc"}, headers=ada.headers))
    assert (same["name"], same["slug"]) == ("Acme", "acme-inc")

    updates = await events_of(services, "organization.updated")
    assert [e.payload for e in updates] == [
        {"changes": {"name": "Acme Inc", "slug": "acme-inc"}, "updated_by": ada.id},
        {"changes": {"name": "Acme"}, "updated_by": ada.id},
    ]
    assert ("organization.update", org["id"], ada.id) in await audit_actions(client, ada, org["id"])


async def test_admins_may_rename_members_may_not(
    client: httpx.AsyncClient, services: Services
) -> None:
    owner = await verified_user(client, services, "owner@example.com")
    org = await create_org(client, owner, "acme")
    admin = await add_member(client, services, owner, org["id"], "admin@example.com", "admin")
    member = await add_member(client, services, owner, org["id"], "member@example.com", "member")
    path = f"/v1/organizations/{org['id']}"

    assert data(await client.patch(path, json={"name": "By Admin"}, headers=admin.headers))
    denied = await client.patch(path, json={"name": "By Member"}, headers=member.headers)
    assert_error(denied, 403, "forbidden")
    assert data(await client.get(path, headers=member.headers))["name"] == "By Admin"


# --- archive -------------------------------------------------------------------------------


async def test_an_archived_organization_is_read_only(
    client: httpx.AsyncClient, services: Services
) -> None:
    owner = await verified_user(client, services, "owner@example.com")
    org = await create_org(client, owner, "acme")
    org_id, h = org["id"], owner.headers
    secrets = f"/v1/organizations/{org_id}/secrets"
    data(await client.post(secrets, json={"name": "TOKEN", "value": "v"}, headers=h), 201)
    job_body = {"organization_id": org_id, "modality": "text", "input": {"prompt": "hi"}}
    job = data(await client.post("/v1/jobs", json=job_body, headers=h), 201)
    flow = {
        "organization_id": org_id,
        "name": "flow",
        "nodes": [{"key": "a", "operation": "workflow.noop"}],
    }
    definition = data(await client.post("/v1/workflow-definitions", json=flow, headers=h), 201)
    key = data(
        await client.post(
            "/v1/api-keys", json={"name": "ci", "organization_id": org_id}, headers=h
        ),
        201,
    )
    key_headers = {"authorization": f"Bearer {key['key']}"}

    archived = data(await client.post(f"/v1/organizations/{org_id}/archive", headers=h))
    assert archived["archived"] is True
    assert data(await client.get(f"/v1/organizations/{org_id}", headers=h))["archived"] is True
    mine = data(await client.get("/v1/me/organizations", headers=h))
    assert {o["slug"]: o["archived"] for o in mine} == {
        "acme": True,
        "owner": False,
        "default": False,
    }
    listed = data(await client.get("/v1/organizations", headers=h))
    assert next(o for o in listed if o["id"] == org_id)["archived"] is True

    # Every change is refused with one clear answer, whoever makes it.
    writes = [
        ("POST", "/v1/jobs", job_body, h),
        ("POST", "/v1/jobs", job_body, key_headers),
        ("POST", "/v1/workflow-definitions", flow, h),
        ("POST", "/v1/workflow-runs", {"workflow_definition_id": definition["id"]}, h),
        ("POST", secrets, {"name": "OTHER", "value": "v"}, h),
        ("DELETE", f"{secrets}/TOKEN", None, h),
        ("PATCH", f"/v1/organizations/{org_id}", {"name": "Renamed"}, h),
        ("POST", "/v1/teams", {"organization_id": org_id, "slug": "tt", "name": "T"}, h),
        ("POST", "/v1/invitations", {"organization_id": org_id, "email": "x@example.com"}, h),
        ("POST", "/v1/api-keys", {"name": "more", "organization_id": org_id}, h),
        ("POST", f"/v1/api-keys/{key['id']}/rotate", None, h),
        (
            "POST",
            f"/v1/organizations/{org_id}/webhooks",
            {"url": "http://127.0.0.1:9/hook", "events": []},
            h,
        ),
    ]
    for method, path, body, headers in writes:
        response = await client.request(method, path, json=body, headers=headers)
        error = assert_error(response, 409, "organization_archived")["error"]
        assert error["message"].endswith("is archived and read-only: an owner can unarchive it.")
        assert error["details"] == {"organization_id": org_id}

    # Reads keep working, for people and keys alike.
    assert [s["name"] for s in data(await client.get(secrets, headers=h))] == ["TOKEN"]
    assert data(await client.get(f"/v1/jobs/{job['id']}", headers=key_headers))["id"] == job["id"]
    assert data(await client.get(f"/v1/workflow-definitions/{definition['id']}", headers=h))
    assert len(data(await client.get(f"/v1/organizations/{org_id}/members", headers=h))) == 1
    assert data(await client.get("/v1/jobs", params={"organization_id": org_id}, headers=h))

    # Archiving again changes nothing; unarchiving makes it writable again.
    assert data(await client.post(f"/v1/organizations/{org_id}/archive", headers=h))["archived"]
    restored = data(await client.post(f"/v1/organizations/{org_id}/unarchive", headers=h))
    assert restored["archived"] is False
    data(await client.post("/v1/jobs", json=job_body, headers=key_headers), 201)
    data(await client.post(secrets, json={"name": "OTHER", "value": "v"}, headers=h), 201)

    kinds = [e.kind for e in await events_of(services, "organization.")]
    assert kinds == ["organization.created", "organization.archived", "organization.unarchived"]
    actions = [a for a, _, _ in await audit_actions(client, owner, org_id)]
    assert actions.count("organization.archive") == 2
    assert actions.count("organization.unarchive") == 1


async def test_only_owners_archive(client: httpx.AsyncClient, services: Services) -> None:
    owner = await verified_user(client, services, "owner@example.com")
    org = await create_org(client, owner, "acme")
    admin = await add_member(client, services, owner, org["id"], "admin@example.com", "admin")
    archive = f"/v1/organizations/{org['id']}/archive"
    unarchive = f"/v1/organizations/{org['id']}/unarchive"

    assert_error(await client.post(archive, headers=admin.headers), 403, "forbidden")
    data(await client.post(archive, headers=owner.headers))
    assert_error(await client.post(unarchive, headers=admin.headers), 403, "forbidden")
    # Looking stays possible for everyone in it.
    got = data(await client.get(f"/v1/organizations/{org['id']}", headers=admin.headers))
    assert got["archived"] is True
    assert data(await client.post(unarchive, headers=owner.headers))["archived"] is False


async def test_access_can_still_be_taken_away_in_an_archived_organization(
    client: httpx.AsyncClient, services: Services
) -> None:
    owner = await verified_user(client, services, "owner@example.com")
    org = await create_org(client, owner, "acme")
    org_id, h = org["id"], owner.headers
    member = await add_member(client, services, owner, org_id, "member@example.com", "member")
    key = data(
        await client.post(
            "/v1/api-keys", json={"name": "ci", "organization_id": org_id}, headers=h
        ),
        201,
    )
    pending = data(await invite(client, owner, org_id, "late@example.com"), 201)
    flow = {
        "organization_id": org_id,
        "name": "gate",
        "nodes": [{"key": "gate", "operation": "workflow.approval"}],
    }
    definition = data(await client.post("/v1/workflow-definitions", json=flow, headers=h), 201)
    run = data(
        await client.post(
            "/v1/workflow-runs", json={"workflow_definition_id": definition["id"]}, headers=h
        ),
        201,
    )
    late = await verified_user(client, services, "late@example.com")
    data(await client.post(f"/v1/organizations/{org_id}/archive", headers=h))

    # Joining is a change: a pending invitation cannot be accepted meanwhile.
    accept = await client.post(f"/v1/invitations/{pending['id']}/accept", headers=late.headers)
    assert_error(accept, 409, "organization_archived")
    assert (
        data(await client.post(f"/v1/invitations/{pending['id']}/revoke", headers=h))["status"]
        == "revoked"
    )
    assert data(await client.post(f"/v1/api-keys/{key['id']}/disable", headers=h))["disabled"]
    cancelled = data(await client.post(f"/v1/workflow-runs/{run['id']}/cancel", json={}, headers=h))
    assert cancelled["status"] == "cancelled"
    remove = await client.delete(f"/v1/organizations/{org_id}/members/{member.id}", headers=h)
    assert data(remove) is None
    # But not a role change: that is not taking access away only.
    me = f"/v1/organizations/{org_id}/members/{owner.id}"
    assert_error(
        await client.patch(me, json={"role": "admin"}, headers=h), 409, "organization_archived"
    )


async def test_archived_organizations_skip_their_cron_firings(settings: Settings) -> None:
    async with harness(settings, at("2026-03-02 08:59:00")) as h:
        wf = await h.definition()
        schedule = await h.create(wf, "0 9 * * *")
        archive = f"/v1/organizations/{DEFAULT_ORGANIZATION_ID}/archive"
        assert data(await h.client.post(archive))["archived"] is True  # the dev owner's org

        h.clock.set(at("2026-03-02 09:00:00"))
        assert await h.tick() == 0
        assert data(await h.client.post(archive.replace("archive", "unarchive")))
        h.clock.set(at("2026-03-03 09:00:00"))
        assert await h.tick() == 1

        history = await h.history(schedule["id"])
        assert [(e["scheduled_for"], e["run_id"] is None, e["reason"]) for e in history] == [
            ("2026-03-02T09:00:00Z", True, "the organization is archived"),
            ("2026-03-03T09:00:00Z", False, None),
        ]
        assert len(await h.runs_of(wf)) == 1


async def test_running_a_provider_in_an_archived_organization_is_refused(
    client: httpx.AsyncClient,
) -> None:
    body = {"modality": "text", "input": {"prompt": "Hello"}}
    assert data(await client.post("/v1/providers/execute", json=body))
    data(await client.post(f"/v1/organizations/{DEFAULT_ORGANIZATION_ID}/archive"))
    refused = await client.post("/v1/providers/execute", json=body)
    assert_error(refused, 409, "organization_archived")
    assert data(await client.post("/v1/providers/estimate", json=body))  # a read


# --- roles ---------------------------------------------------------------------------------


async def test_role_changes(client: httpx.AsyncClient, services: Services) -> None:
    owner = await verified_user(client, services, "owner@example.com")
    org = await create_org(client, owner, "acme")
    org_id = org["id"]
    admin = await add_member(client, services, owner, org_id, "admin@example.com", "admin")
    member = await add_member(client, services, owner, org_id, "member@example.com", "member")

    def member_path(user: User | str) -> str:
        principal_id = user if isinstance(user, str) else user.id
        return f"/v1/organizations/{org_id}/members/{principal_id}"

    async def set_role(by: User, user: User | str, role: str) -> httpx.Response:
        return await client.patch(member_path(user), json={"role": role}, headers=by.headers)

    viewer = data(await set_role(admin, member, "viewer"))
    assert (viewer["principal_id"], viewer["role"], viewer["email"]) == (
        member.id,
        "viewer",
        "member@example.com",
    )
    # The new role applies to the next request.
    denied = await client.post(
        "/v1/jobs",
        json={"organization_id": org_id, "modality": "text", "input": {"prompt": "x"}},
        headers=member.headers,
    )
    assert_error(denied, 403, "forbidden")
    # Only owners grant or take the owner role; nobody but admins and owners changes roles.
    assert_error(await set_role(admin, member, "owner"), 403, "forbidden")
    assert_error(await set_role(admin, owner, "admin"), 403, "forbidden")
    assert_error(await set_role(member, admin, "viewer"), 403, "forbidden")
    assert_error(await set_role(owner, owner, "admin"), 409, "last_owner")
    assert_error(await set_role(owner, "no-such-principal", "admin"), 404, "not_found")
    assert_error(await set_role(owner, member, "superuser"), 400, "validation_failed")

    assert data(await set_role(owner, admin, "owner"))["role"] == "owner"
    assert data(await set_role(admin, owner, "member"))["role"] == "member"  # a co-owner may
    assert_error(await set_role(admin, admin, "admin"), 409, "last_owner")
    unchanged = data(await set_role(admin, member, "viewer"))
    assert unchanged["role"] == "viewer"

    members = data(await client.get(f"/v1/organizations/{org_id}/members", headers=admin.headers))
    assert {m["email"]: m["role"] for m in members} == {
        "owner@example.com": "member",
        "admin@example.com": "owner",
        "member@example.com": "viewer",
    }
    changes = await events_of(services, "member.role_changed")
    assert [(e.payload["principal_id"], e.payload["from"], e.payload["to"]) for e in changes] == [
        (member.id, "member", "viewer"),
        (admin.id, "admin", "owner"),
        (owner.id, "owner", "member"),
    ]
    assert [e.payload["by"] for e in changes] == [admin.id, owner.id, admin.id]
    assert ("member.update", member.id, admin.id) in await audit_actions(client, admin, org_id)


async def test_two_owners_demoting_each_other_leave_one_owner(
    client: httpx.AsyncClient, services: Services
) -> None:
    ada = await verified_user(client, services, "ada@example.com")
    org = await create_org(client, ada, "acme")
    bob = await add_member(client, services, ada, org["id"], "bob@example.com", "owner")

    async def demote(by: User, other: User) -> httpx.Response:
        path = f"/v1/organizations/{org['id']}/members/{other.id}"
        return await client.patch(path, json={"role": "admin"}, headers=by.headers)

    answers = await asyncio.gather(demote(ada, bob), demote(bob, ada))
    # One wins. The other is refused: as an admin by then (403), or, authorized as the owner
    # it still was when its request arrived, by the last-owner rule checked under the lock
    # (409 last_owner).
    codes = sorted(r.status_code for r in answers)
    assert codes in ([200, 403], [200, 409]), [r.text for r in answers]
    members = data(await client.get(f"/v1/organizations/{org['id']}/members", headers=ada.headers))
    assert sorted(m["role"] for m in members) == ["admin", "owner"]


async def test_two_owners_stepping_down_at_once_leave_one_owner(
    client: httpx.AsyncClient, services: Services
) -> None:
    ada = await verified_user(client, services, "ada@example.com")
    org = await create_org(client, ada, "acme")
    bob = await add_member(client, services, ada, org["id"], "bob@example.com", "owner")

    async def step_down(user: User) -> httpx.Response:
        path = f"/v1/organizations/{org['id']}/members/{user.id}"
        return await client.patch(path, json={"role": "admin"}, headers=user.headers)

    answers = await asyncio.gather(step_down(ada), step_down(bob))
    assert sorted(r.status_code for r in answers) == [200, 409]
    assert next(r for r in answers if r.status_code == 409).json()["error"]["code"] == "last_owner"
    members = data(await client.get(f"/v1/organizations/{org['id']}/members", headers=ada.headers))
    assert sorted(m["role"] for m in members) == ["admin", "owner"]


# --- removal -------------------------------------------------------------------------------


async def test_removing_a_member_takes_every_access_away_at_once(
    client: httpx.AsyncClient, services: Services
) -> None:
    owner = await verified_user(client, services, "owner@example.com")
    org = await create_org(client, owner, "acme")
    org_id, h = org["id"], owner.headers
    team = data(
        await client.post(
            "/v1/teams", json={"organization_id": org_id, "slug": "eng", "name": "Eng"}, headers=h
        ),
        201,
    )
    admin = await verified_user(client, services, "admin@example.com")
    inv = data(await invite(client, owner, org_id, admin.email, "admin", team_id=team["id"]), 201)
    data(await client.post(f"/v1/invitations/{inv['id']}/accept", headers=admin.headers))
    grant = {"principal_id": admin.id, "organization_id": org_id, "action": "organization.archive"}
    data(await client.post("/v1/permissions", json=grant, headers=h), 201)
    key = data(
        await client.post(
            "/v1/api-keys",
            json={"name": "admin-ci", "organization_id": org_id},
            headers=admin.headers,
        ),
        201,
    )
    key_headers = {"authorization": f"Bearer {key['key']}"}
    assert data(await client.get(f"/v1/organizations/{org_id}", headers=key_headers))
    owners_key = data(
        await client.post(
            "/v1/api-keys", json={"name": "mine", "organization_id": org_id}, headers=h
        ),
        201,
    )

    removed = await client.delete(f"/v1/organizations/{org_id}/members/{admin.id}", headers=h)
    assert data(removed) is None

    # The removed user's next request in the organization finds nothing; the key is dead.
    assert_error(
        await client.get(f"/v1/organizations/{org_id}", headers=admin.headers), 404, "not_found"
    )
    assert_error(await client.get("/v1/me", headers=key_headers), 401, "unauthorized")
    assert [
        t["organization_id"] for t in data(await client.get("/v1/me/teams", headers=admin.headers))
    ] == []
    assert org_id not in {
        o["id"] for o in data(await client.get("/v1/me/organizations", headers=admin.headers))
    }
    members = data(await client.get(f"/v1/organizations/{org_id}/members", headers=h))
    assert [m["principal_id"] for m in members] == [owner.id]
    grants = data(
        await client.get("/v1/permissions", params={"organization_id": org_id}, headers=h)
    )
    assert [g for g in grants if g["principal_id"] == admin.id] == []
    keys = {k["id"]: k["disabled"] for k in data(await client.get("/v1/api-keys", headers=h))}
    assert keys[key["id"]] is True
    assert keys[owners_key["id"]] is False

    # Invited back, the old key stays dead: it was disabled, not merely orphaned.
    again = data(await invite(client, owner, org_id, admin.email, "member"), 201)
    data(await client.post(f"/v1/invitations/{again['id']}/accept", headers=admin.headers))
    assert_error(await client.get("/v1/me", headers=key_headers), 401, "unauthorized")
    assert data(await client.get(f"/v1/organizations/{org_id}", headers=admin.headers))

    removal = (await events_of(services, "member.removed"))[0]
    assert removal.organization_id == org_id
    assert removal.payload == {
        "principal_id": admin.id,
        "role": "admin",
        "by": owner.id,
        "left": False,
        "teams_left": 1,
        "grants_deleted": 1,
        "api_keys_disabled": [key["id"]],
    }
    disabled = await events_of(services, "api_key.disabled")
    assert [(e.payload["api_key_id"], e.payload["reason"]) for e in disabled] == [
        (key["id"], "creator_removed")
    ]
    assert ("member.remove", admin.id, owner.id) in await audit_actions(client, owner, org_id)


async def test_who_may_remove_whom(client: httpx.AsyncClient, services: Services) -> None:
    owner = await verified_user(client, services, "owner@example.com")
    org = await create_org(client, owner, "acme")
    org_id = org["id"]
    admin = await add_member(client, services, owner, org_id, "admin@example.com", "admin")
    member = await add_member(client, services, owner, org_id, "member@example.com", "member")
    viewer = await add_member(client, services, owner, org_id, "viewer@example.com", "viewer")

    async def remove(by: User, user: User) -> httpx.Response:
        path = f"/v1/organizations/{org_id}/members/{user.id}"
        return await client.delete(path, headers=by.headers)

    assert_error(await remove(admin, owner), 403, "forbidden")
    assert_error(await remove(member, viewer), 403, "forbidden")
    assert_error(await remove(owner, owner), 409, "last_owner")  # leaving as the last owner
    assert data(await remove(member, member)) is None  # leaving
    assert_error(await remove(member, member), 404, "not_found")
    assert data(await remove(admin, viewer)) is None
    left = (await events_of(services, "member.removed"))[0].payload
    assert (left["principal_id"], left["left"], left["by"]) == (member.id, True, member.id)

    # With a second owner, the first may leave.
    data(
        await client.patch(
            f"/v1/organizations/{org_id}/members/{admin.id}",
            json={"role": "owner"},
            headers=owner.headers,
        )
    )
    assert data(await remove(owner, owner)) is None
    members = data(await client.get(f"/v1/organizations/{org_id}/members", headers=admin.headers))
    assert [(m["principal_id"], m["role"]) for m in members] == [(admin.id, "owner")]


async def test_an_api_key_cannot_remove_its_creator_without_member_manage(
    client: httpx.AsyncClient, services: Services
) -> None:
    owner = await verified_user(client, services, "owner@example.com")
    org = await create_org(client, owner, "acme")
    admin = await add_member(client, services, owner, org["id"], "admin@example.com", "admin")
    key = data(
        await client.post(
            "/v1/api-keys",
            json={"name": "ro", "organization_id": org["id"], "scopes": ["organization.read"]},
            headers=admin.headers,
        ),
        201,
    )
    path = f"/v1/organizations/{org['id']}/members/{admin.id}"
    refused = await client.delete(path, headers={"authorization": f"Bearer {key['key']}"})
    assert_error(refused, 403, "forbidden")
