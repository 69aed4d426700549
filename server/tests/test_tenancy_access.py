"""RBAC: every role against every action, explicit grants, and authorization checks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_helpers import assert_error
from tenancy_helpers import User, add_member, create_org, data, verified_user

from fabric_server.access.policy import ACTIONS, ROLE_ACTIONS, ROLES
from fabric_server.services import Services
from fabric_server.settings import DEFAULT_ORGANIZATION_ID


@dataclass
class Cast:
    org: dict[str, Any]
    users: dict[str, User]
    job_id: str
    team_id: str

    @property
    def org_id(self) -> str:
        return str(self.org["id"])


@pytest.fixture
async def cast(client: httpx.AsyncClient, services: Services) -> Cast:
    owner = await verified_user(client, services, "owner@example.com")
    org = await create_org(client, owner, "acme")
    users = {"owner": owner}
    for role in ("admin", "member", "viewer"):
        users[role] = await add_member(
            client, services, owner, org["id"], f"{role}@example.com", role
        )
    job = data(
        await client.post(
            "/v1/jobs",
            json={"organization_id": org["id"], "modality": "text", "input": {"prompt": "x"}},
            headers=owner.headers,
        ),
        201,
    )
    team = data(
        await client.post(
            "/v1/teams",
            json={"organization_id": org["id"], "slug": "core", "name": "Core"},
            headers=owner.headers,
        ),
        201,
    )
    return Cast(org, users, job["id"], team["id"])


def real_route(cast: Cast, role: str, action: str) -> tuple[str, str, Any] | None:
    """A request that needs exactly `action`, or None when no route of this branch does."""
    org = cast.org_id
    routes: dict[str, tuple[str, str, Any]] = {
        "organization.read": ("GET", f"/v1/organizations/{org}", None),
        "team.create": (
            "POST",
            "/v1/teams",
            {"organization_id": org, "slug": f"team-{role}", "name": "T"},
        ),
        "member.invite": (
            "POST",
            "/v1/invitations",
            {"organization_id": org, "email": f"invitee-{role}@example.com", "role": "viewer"},
        ),
        "job.create": (
            "POST",
            "/v1/jobs",
            {"organization_id": org, "modality": "text", "input": {"prompt": "hi"}},
        ),
        "job.read": ("GET", f"/v1/jobs/{cast.job_id}", None),
        "secret.manage": (
            "POST",
            f"/v1/organizations/{org}/secrets",
            {"name": f"S_{role.upper()}", "value": "v"},
        ),
        "api_key.manage": ("POST", "/v1/api-keys", {"name": "k", "organization_id": org}),
        "permission.manage": ("GET", f"/v1/permissions?organization_id={org}", None),
    }
    return routes.get(action)


async def test_role_matrix_against_real_routes(client: httpx.AsyncClient, cast: Cast) -> None:
    mismatches = []
    for role in ROLES:
        user = cast.users[role]
        for action in ACTIONS:
            expected = action in ROLE_ACTIONS[role]
            route = real_route(cast, role, action)
            if route is not None:
                method, path, body = route
                response = await client.request(method, path, json=body, headers=user.headers)
                allowed = response.is_success
                if not allowed and response.status_code != 403:
                    mismatches.append((role, action, response.status_code, response.text))
            else:
                check = {"action": action, "organization_id": cast.org_id}
                result = data(
                    await client.post("/v1/authz/check", json=check, headers=user.headers)
                )
                allowed = result["allowed"]
                assert result["role"] == role
            if allowed != expected:
                mismatches.append((role, action, allowed, expected))
    assert mismatches == []


def test_roles_are_ordered_by_their_actions() -> None:
    assert ROLE_ACTIONS["viewer"] < ROLE_ACTIONS["member"] < ROLE_ACTIONS["admin"]
    assert ROLE_ACTIONS["admin"] < ROLE_ACTIONS["owner"] == frozenset(ACTIONS)


async def test_a_deny_grant_wins_over_the_role(client: httpx.AsyncClient, cast: Cast) -> None:
    owner, member = cast.users["owner"], cast.users["member"]
    grant = {
        "principal_id": member.id,
        "organization_id": cast.org_id,
        "action": "job.create",
        "effect": "deny",
    }
    created = data(await client.post("/v1/permissions", json=grant, headers=owner.headers), 201)
    assert created["effect"] == "deny"
    job = {"organization_id": cast.org_id, "modality": "text", "input": {"prompt": "x"}}
    body = assert_error(
        await client.post("/v1/jobs", json=job, headers=member.headers), 403, "forbidden"
    )
    assert "grant denies" in body["error"]["message"]
    check = {"action": "job.create", "organization_id": cast.org_id}
    result = data(await client.post("/v1/authz/check", json=check, headers=member.headers))
    assert (result["allowed"], result["reason"]) == (False, "denied_by_grant")
    perms = data(await client.get("/v1/me/permissions", headers=member.headers))
    acme = next(p for p in perms if p["organization_id"] == cast.org_id)
    assert "job.create" not in acme["actions"]

    data(await client.delete(f"/v1/permissions/{created['id']}", headers=owner.headers))
    data(await client.post("/v1/jobs", json=job, headers=member.headers), 201)


async def test_an_allow_grant_adds_an_action(client: httpx.AsyncClient, cast: Cast) -> None:
    owner, viewer = cast.users["owner"], cast.users["viewer"]
    job = {"organization_id": cast.org_id, "modality": "text", "input": {"prompt": "x"}}
    assert_error(await client.post("/v1/jobs", json=job, headers=viewer.headers), 403, "forbidden")
    grant = {"principal_id": viewer.id, "organization_id": cast.org_id, "action": "job.create"}
    data(await client.post("/v1/permissions", json=grant, headers=owner.headers), 201)
    data(await client.post("/v1/jobs", json=job, headers=viewer.headers), 201)
    check = {"action": "job.create", "organization_id": cast.org_id}
    result = data(await client.post("/v1/authz/check", json=check, headers=viewer.headers))
    assert (result["allowed"], result["reason"], result["role"]) == (True, "grant", "viewer")
    listed = data(
        await client.get(
            "/v1/permissions",
            params={"organization_id": cast.org_id, "principal_id": viewer.id},
            headers=owner.headers,
        )
    )
    assert [(g["action"], g["effect"]) for g in listed] == [("job.create", "allow")]


async def test_scoped_grants_cover_only_their_resource(
    client: httpx.AsyncClient, cast: Cast
) -> None:
    owner, member = cast.users["owner"], cast.users["member"]
    grant = {
        "principal_id": member.id,
        "organization_id": cast.org_id,
        "action": "organization.update",
        "team_id": cast.team_id,
    }
    data(await client.post("/v1/permissions", json=grant, headers=owner.headers), 201)
    checks = [
        {"action": "organization.update", "resource": f"team:{cast.team_id}"},
        {"action": "organization.update", "organization_id": cast.org_id},
    ]
    results = data(
        await client.post("/v1/authz/check-batch", json={"checks": checks}, headers=member.headers)
    )
    assert [r["allowed"] for r in results] == [True, False]
    perms = data(await client.get("/v1/me/permissions", headers=member.headers))
    org_entry = next(p for p in perms if p["organization_id"] == cast.org_id)
    assert "organization.update" not in org_entry["actions"]
    # The owner, who is in the team, sees one entry for it with the team role.
    owner_perms = data(await client.get("/v1/me/permissions", headers=owner.headers))
    team_entry = next(p for p in owner_perms if p["team_id"] == cast.team_id)
    assert (team_entry["organization_id"], team_entry["role"]) == (cast.org_id, "owner")
    assert "organization.delete" in team_entry["actions"]


async def test_who_may_grant_what(client: httpx.AsyncClient, cast: Cast) -> None:
    admin, member, owner = cast.users["admin"], cast.users["member"], cast.users["owner"]
    org = cast.org_id

    async def grant(by: User, **body: Any) -> httpx.Response:
        body.setdefault("organization_id", org)
        return await client.post("/v1/permissions", json=body, headers=by.headers)

    assert_error(await grant(member, principal_id=member.id, action="job.read"), 403, "forbidden")
    assert_error(await grant(admin, principal_id=member.id, action="*"), 403, "forbidden")
    assert_error(
        await grant(admin, principal_id=member.id, action="organization.delete"), 403, "forbidden"
    )
    assert_error(
        await grant(admin, principal_id=owner.id, action="job.read", effect="deny"),
        403,
        "forbidden",
    )
    assert_error(
        await grant(admin, principal_id=member.id, action="fly.away"), 400, "validation_failed"
    )
    assert_error(
        await grant(admin, principal_id=member.id, action="job.read", team_id="nope"),
        404,
        "not_found",
    )
    data(await grant(admin, principal_id=member.id, action="audit.read"), 201)
    data(await grant(owner, principal_id=member.id, action="*", effect="deny"), 201)
    check = {"action": "job.read", "organization_id": org}
    result = data(await client.post("/v1/authz/check", json=check, headers=member.headers))
    assert result["reason"] == "denied_by_grant"


async def test_check_accepts_both_body_forms(client: httpx.AsyncClient, cast: Cast) -> None:
    viewer = cast.users["viewer"]
    typed = {"action": "job.read", "resource_type": "job", "resource_id": cast.job_id}
    joined = {"action": "job.read", "resource": f"job:{cast.job_id}"}
    for body in (typed, joined):
        result = data(await client.post("/v1/authz/check", json=body, headers=viewer.headers))
        assert result == {
            "action": "job.read",
            "resource_type": "job",
            "resource_id": cast.job_id,
            "organization_id": cast.org_id,
            "allowed": True,
            "reason": "role",
            "role": "viewer",
        }
    refused = {"action": "team.create", "resource": f"organization:{cast.org_id}"}
    result = data(await client.post("/v1/authz/check", json=refused, headers=viewer.headers))
    assert (result["allowed"], result["reason"]) == (False, "role_does_not_allow")
    # `read` is an alias of organization.read; the id may itself contain colons.
    alias = {"action": "read", "resource": f"organization:{cast.org_id}"}
    assert data(await client.post("/v1/authz/check", json=alias, headers=viewer.headers))["allowed"]
    colon = data(
        await client.post(
            "/v1/authz/check",
            json={"action": "job.read", "resource": "job:a:b"},
            headers=viewer.headers,
        )
    )
    assert (colon["resource_id"], colon["reason"]) == ("a:b", "not_found")


async def test_checks_never_reveal_other_organizations(
    client: httpx.AsyncClient, services: Services, cast: Cast
) -> None:
    stranger = await verified_user(client, services, "stranger@example.com")
    for body in (
        {"action": "job.read", "resource_type": "job", "resource_id": cast.job_id},
        {"action": "organization.read", "resource": f"organization:{cast.org_id}"},
        {"action": "organization.read", "resource": f"team:{cast.team_id}"},
        {"action": "organization.read", "resource": "team:no-such-team"},
        {"action": "job.read", "organization_id": cast.org_id},
    ):
        response = await client.post("/v1/authz/check", json=body, headers=stranger.headers)
        result = data(response)
        assert (result["allowed"], result["reason"], result["role"]) == (False, "not_found", None)


async def test_checks_without_a_resource_use_the_callers_organization(
    client: httpx.AsyncClient, services: Services
) -> None:
    # The dev owner: the default organization.
    result = data(await client.post("/v1/authz/check", json={"action": "job.create"}))
    assert (result["allowed"], result["organization_id"]) == (True, DEFAULT_ORGANIZATION_ID)
    results = data(
        await client.post(
            "/v1/authz/check-batch",
            json={
                "checks": [
                    {"action": "workflow.run", "resource_type": "workflow"},
                    {"action": "job.create"},
                    {"action": "organization.delete"},
                    {"action": "no.such.action"},
                    {"action": "job.read", "resource_type": "spaceship", "resource_id": "x"},
                ]
            },
        )
    )
    assert [(r["allowed"], r["reason"]) for r in results] == [
        (True, "role"),  # a type alone needs no resolver: it is an organization-level check
        (True, "role"),
        (True, "role"),
        (False, "unknown_action"),
        (False, "unknown_resource_type"),
    ]
    assert_error(
        await client.post("/v1/authz/check-batch", json={"checks": [{"action": ""}]}),
        400,
        "validation_failed",
    )


async def test_registered_resource_types_are_checked(
    client: httpx.AsyncClient, services: Services, cast: Cast
) -> None:
    async def workflow_org(_session: Any, workflow_id: str) -> str | None:
        return cast.org_id if workflow_id == "wf-1" else None

    services.access.register_resource("workflow", workflow_org)
    member = cast.users["member"]
    edit = {"action": "workflow.edit", "resource_type": "workflow", "resource_id": "wf-1"}
    result = data(await client.post("/v1/authz/check", json=edit, headers=member.headers))
    assert (result["allowed"], result["organization_id"]) == (True, cast.org_id)
    missing = {**edit, "resource_id": "wf-2"}
    assert not data(await client.post("/v1/authz/check", json=missing, headers=member.headers))[
        "allowed"
    ]


def test_docs_show_the_role_table() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "rbac.md").read_text(encoding="utf-8")
    table = doc.split("<!-- role-matrix:start -->")[1].split("<!-- role-matrix:end -->")[0]
    documented = {}
    for line in table.strip().splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        documented[cells[0].strip("`")] = {r for r, c in zip(ROLES, cells[1:]) if c == "✓"}
    assert documented == {a: {r for r in ROLES if a in ROLE_ACTIONS[r]} for a in ACTIONS}
