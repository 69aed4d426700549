"""Tenancy methods: paths, bodies and return values (wire-spec §9.7-§9.12)."""

from __future__ import annotations

import json
from typing import Any, Callable

import httpx
import pytest

from fabric_platform import (
    AsyncFabricClient,
    FabricAPIError,
    FabricClient,
    FabricConflictError,
    FabricForbiddenError,
)

from .helpers import Script, fail, ok

MakeClient = Callable[..., FabricClient]
DEFAULT_ORG = "00000000-0000-0000-0000-000000000010"


def sent(script: Script) -> list[tuple[str, str, Any]]:
    return [
        (r.method, r.url.path, json.loads(r.content) if r.content else None)
        for r in script.requests
    ]


def test_organizations_and_teams_as_in_the_spec(make_client: MakeClient) -> None:
    org = {"id": "org-1", "slug": "acme", "name": "Acme Corp"}
    team = {"id": "team-1", "organization_id": "org-1", "slug": "engineering"}
    script = Script(
        ok(org, 201), ok([org]), ok(org), ok([{"id": "m-1"}]), ok(team, 201), ok([team])
    )
    fabric = make_client(script)

    org = fabric.create_organization(slug="acme", name="Acme Corp")
    orgs = fabric.list_organizations()
    org = fabric.get_organization(org["id"])
    members = fabric.list_org_members(org["id"])
    team = fabric.create_team(org["id"], slug="engineering", name="Engineering")
    teams = fabric.list_org_teams(org["id"])

    assert (orgs, members, teams) == ([org], [{"id": "m-1"}], [team])
    assert sent(script) == [
        ("POST", "/v1/organizations", {"slug": "acme", "name": "Acme Corp"}),
        ("GET", "/v1/organizations", None),
        ("GET", "/v1/organizations/org-1", None),
        ("GET", "/v1/organizations/org-1/members", None),
        (
            "POST",
            "/v1/teams",
            {"organization_id": "org-1", "slug": "engineering", "name": "Engineering"},
        ),
        ("GET", "/v1/organizations/org-1/teams", None),
    ]


def test_organization_management(make_client: MakeClient) -> None:
    org = {"id": "org-1", "slug": "acme-inc", "name": "Acme Inc", "archived": False}
    member = {"id": "m-1", "principal_id": "p-2", "role": "admin"}
    script = Script(
        ok(org),
        ok({**org, "name": "Only"}),
        ok({**org, "archived": True}),
        ok(org),
        ok(member),
        ok(None),
        ok({"id": "team-1", "slug": "eng"}),
    )
    fabric = make_client(script)

    updated = fabric.update_organization("org-1", name="Acme Inc", slug="acme-inc")
    fabric.update_organization("org-1", name="Only")
    archived = fabric.archive_organization("org-1")
    unarchived = fabric.unarchive_organization("org-1")
    changed = fabric.update_org_member("org-1", "p-2", "admin")
    removed = fabric.remove_org_member("org-1", "p-2")
    team = fabric.get_team("team-1")

    assert (updated, archived["archived"], unarchived["archived"]) == (org, True, False)
    assert (changed, removed, team["slug"]) == (member, None, "eng")
    assert sent(script) == [
        ("PATCH", "/v1/organizations/org-1", {"name": "Acme Inc", "slug": "acme-inc"}),
        ("PATCH", "/v1/organizations/org-1", {"name": "Only"}),
        ("POST", "/v1/organizations/org-1/archive", None),
        ("POST", "/v1/organizations/org-1/unarchive", None),
        ("PATCH", "/v1/organizations/org-1/members/p-2", {"role": "admin"}),
        ("DELETE", "/v1/organizations/org-1/members/p-2", None),
        ("GET", "/v1/teams/team-1", None),
    ]


def test_organization_management_errors_keep_their_codes(make_client: MakeClient) -> None:
    script = Script(
        fail(409, "organization_archived", "archived"),
        fail(409, "last_owner", "last owner"),
        fail(403, "forbidden", "owners only"),
    )
    fabric = make_client(script)
    with pytest.raises(FabricConflictError) as archived:
        fabric.update_organization("org-1", name="New")
    assert archived.value.code == "organization_archived"
    with pytest.raises(FabricConflictError) as last:
        fabric.remove_org_member("org-1", "p-1")
    assert (last.value.status_code, last.value.code) == (409, "last_owner")
    with pytest.raises(FabricForbiddenError):
        fabric.archive_organization("org-1")
    # Refusals are final: nothing is retried.
    assert len(script.requests) == 3


def test_member_and_team_ids_are_escaped(make_client: MakeClient) -> None:
    script = Script(ok(None), ok({"id": "t"}))
    fabric = make_client(script)
    fabric.remove_org_member("org/1", "p 2")
    fabric.get_team("t/1")
    assert [r.url.raw_path.decode() for r in script.requests] == [
        "/v1/organizations/org%2F1/members/p%202",
        "/v1/teams/t%2F1",
    ]


def test_invitations_as_in_the_spec(make_client: MakeClient) -> None:
    inv = {"id": "inv-1", "status": "pending"}
    script = Script(ok(inv, 201), ok({"id": "m-1", "role": "member"}), ok(inv))
    fabric = make_client(script)

    inv = fabric.create_invitation("org-1", "new@example.com", role="member")
    membership = fabric.accept_invitation(inv["id"])
    revoked = fabric.revoke_invitation(inv["id"])

    assert membership["role"] == "member"
    assert revoked["id"] == "inv-1"
    assert sent(script) == [
        (
            "POST",
            "/v1/invitations",
            {"organization_id": "org-1", "email": "new@example.com", "role": "member"},
        ),
        ("POST", "/v1/invitations/inv-1/accept", None),
        ("POST", "/v1/invitations/inv-1/revoke", None),
    ]
    # Body-less action calls still say they speak JSON.
    assert script.requests[1].headers["content-type"] == "application/json"


def test_invitation_into_a_team(make_client: MakeClient) -> None:
    script = Script(ok({"id": "inv-1"}, 201))
    make_client(script).create_invitation("org-1", "a@example.com", "viewer", team_id="t-1")
    assert script.bodies() == [
        {"organization_id": "org-1", "email": "a@example.com", "role": "viewer", "team_id": "t-1"}
    ]


def test_invitation_errors_keep_their_codes(make_client: MakeClient) -> None:
    script = Script(
        fail(409, "invitation_already_accepted", "used"),
        fail(410, "invitation_revoked", "revoked"),
        fail(403, "forbidden", "another address"),
    )
    fabric = make_client(script)
    with pytest.raises(FabricConflictError) as conflict:
        fabric.accept_invitation("inv-1")
    assert conflict.value.code == "invitation_already_accepted"
    with pytest.raises(FabricAPIError) as gone:
        fabric.accept_invitation("inv-1")
    assert (gone.value.status_code, gone.value.code) == (410, "invitation_revoked")
    with pytest.raises(FabricForbiddenError):
        fabric.accept_invitation("inv-1")


def test_identity(make_client: MakeClient) -> None:
    me = {"principal_id": "p-1", "authenticated": True}
    script = Script(ok(me), ok([{"id": "org-1"}]), ok([]), ok([{"role": "admin"}]))
    fabric = make_client(script)

    assert fabric.get_me() == me
    assert fabric.get_my_organizations() == [{"id": "org-1"}]
    assert fabric.get_my_teams() == []
    assert fabric.get_my_permissions() == [{"role": "admin"}]
    assert [path for _, path, _ in sent(script)] == [
        "/v1/me",
        "/v1/me/organizations",
        "/v1/me/teams",
        "/v1/me/permissions",
    ]


def test_check_permission_sends_the_typed_form_and_returns_a_bool(
    make_client: MakeClient,
) -> None:
    script = Script(ok({"allowed": True, "reason": "role"}), ok({"allowed": False}), ok({}))
    fabric = make_client(script)

    assert fabric.check_permission("workflow.edit", resource_type="workflow", resource_id="wf-1")
    assert fabric.check_permission("job.create", organization_id="org-2") is False
    assert fabric.check_permission("job.create") is False  # no "allowed": not allowed

    assert script.bodies() == [
        {"action": "workflow.edit", "resource_type": "workflow", "resource_id": "wf-1"},
        {"action": "job.create", "organization_id": "org-2"},
        {"action": "job.create"},
    ]
    assert script.last.url.path == "/v1/authz/check"


def test_check_permissions_batch(make_client: MakeClient) -> None:
    results = [{"allowed": True}, {"allowed": False}]
    script = Script(ok(results))
    fabric = make_client(script)

    answer = fabric.check_permissions(
        [
            {"action": "workflow.run", "resource_type": "workflow"},
            {"action": "job.create"},
        ]
    )

    assert answer == results
    assert script.last.url.path == "/v1/authz/check-batch"
    assert script.bodies() == [
        {
            "checks": [
                {"action": "workflow.run", "resource_type": "workflow"},
                {"action": "job.create"},
            ]
        }
    ]


def test_api_keys_as_in_the_spec(make_client: MakeClient) -> None:
    key = {"id": "key-1", "key": "fab_live_x", "scopes": ["workflow.run"]}
    script = Script(
        ok(key, 201),
        ok([{"id": "key-1"}]),
        ok({**key, "key": "fab_live_y"}),
        ok({"id": "key-1", "disabled": True}),
        httpx.Response(200, json={"data": None, "meta": {"status": 200}}),
    )
    fabric = make_client(script)

    key = fabric.create_api_key("ci-pipeline", "org-1", scopes=["workflow.run"])
    keys = fabric.list_api_keys()
    rotated = fabric.rotate_api_key(key["id"])
    disabled = fabric.disable_api_key(key["id"])
    deleted = fabric.delete_api_key(key["id"])

    assert (keys, rotated["key"], disabled["disabled"], deleted) == (
        [{"id": "key-1"}],
        "fab_live_y",
        True,
        None,
    )
    assert sent(script) == [
        (
            "POST",
            "/v1/api-keys",
            {"name": "ci-pipeline", "organization_id": "org-1", "scopes": ["workflow.run"]},
        ),
        ("GET", "/v1/api-keys", None),
        ("POST", "/v1/api-keys/key-1/rotate", None),
        ("POST", "/v1/api-keys/key-1/disable", None),
        ("DELETE", "/v1/api-keys/key-1", None),
    ]


def test_api_key_options(make_client: MakeClient) -> None:
    script = Script(ok({"id": "k"}, 201))
    make_client(script).create_api_key("n", "org-1", description="CI", expires_in_days=30)
    assert script.bodies() == [
        {"name": "n", "organization_id": "org-1", "description": "CI", "expires_in_days": 30}
    ]


def test_secrets_use_the_client_organization(make_client: MakeClient) -> None:
    listed = [{"name": "OPENAI_API_KEY", "created_at": "t", "updated_at": "t"}]
    script = Script(ok(listed[0], 201), ok(listed), ok(None))
    fabric = make_client(script, organization_id="org-7")

    fabric.set_secret("OPENAI_API_KEY", "sk-...")
    names = fabric.list_secrets()
    fabric.delete_secret("OPENAI_API_KEY")

    assert names == ["OPENAI_API_KEY"]
    assert sent(script) == [
        ("POST", "/v1/organizations/org-7/secrets", {"name": "OPENAI_API_KEY", "value": "sk-..."}),
        ("GET", "/v1/organizations/org-7/secrets", None),
        ("DELETE", "/v1/organizations/org-7/secrets/OPENAI_API_KEY", None),
    ]


def test_secret_and_path_ids_are_escaped(make_client: MakeClient) -> None:
    script = Script(ok(None))
    fabric = make_client(script)
    fabric.delete_secret("A/B")
    assert script.last.url.raw_path.decode() == f"/v1/organizations/{DEFAULT_ORG}/secrets/A%2FB"


async def test_async_organization_management(
    make_async_client: Callable[..., AsyncFabricClient],
) -> None:
    org = {"id": "org-1", "archived": True}
    script = Script(
        ok(org), ok(org), ok(org), ok({"role": "viewer"}), ok(None), ok({"id": "team-1"})
    )
    fabric = make_async_client(script)

    assert await fabric.update_organization("org-1", slug="acme") == org
    assert (await fabric.archive_organization("org-1"))["archived"] is True
    await fabric.unarchive_organization("org-1")
    assert (await fabric.update_org_member("org-1", "p-2", "viewer"))["role"] == "viewer"
    assert await fabric.remove_org_member("org-1", "p-2") is None
    assert (await fabric.get_team("team-1"))["id"] == "team-1"
    assert sent(script) == [
        ("PATCH", "/v1/organizations/org-1", {"slug": "acme"}),
        ("POST", "/v1/organizations/org-1/archive", None),
        ("POST", "/v1/organizations/org-1/unarchive", None),
        ("PATCH", "/v1/organizations/org-1/members/p-2", {"role": "viewer"}),
        ("DELETE", "/v1/organizations/org-1/members/p-2", None),
        ("GET", "/v1/teams/team-1", None),
    ]


async def test_async_twin(make_async_client: Callable[..., AsyncFabricClient]) -> None:
    script = Script(
        ok({"id": "org-1"}, 201),
        ok({"allowed": True}),
        ok([{"allowed": False}]),
        ok([{"name": "A"}, {"name": "B"}]),
        ok({"id": "k", "key": "fab_live_z"}, 201),
    )
    fabric = make_async_client(script)

    org = await fabric.create_organization("acme", "Acme")
    assert await fabric.check_permission("job.read", "job", "j-1") is True
    assert await fabric.check_permissions([{"action": "job.create"}]) == [{"allowed": False}]
    assert await fabric.list_secrets() == ["A", "B"]
    key = await fabric.create_api_key("ci", org["id"])
    assert key["key"] == "fab_live_z"
    assert [path for _, path, _ in sent(script)] == [
        "/v1/organizations",
        "/v1/authz/check",
        "/v1/authz/check-batch",
        f"/v1/organizations/{DEFAULT_ORG}/secrets",
        "/v1/api-keys",
    ]
