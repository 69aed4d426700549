"""The SDK's tenancy surface, as the product spec writes it, against a real server."""

from __future__ import annotations

import re

import httpx
import pytest

from fabric_platform import (
    AsyncFabricClient,
    FabricAuthError,
    FabricClient,
    FabricConflictError,
    FabricForbiddenError,
    FabricNotFoundError,
)
from fabric_server.testing import LiveServer

# This branch has no workflow definitions yet: any workflow id is simply not visible.
wf_id = "00000000-0000-0000-0000-00000000f00d"


def test_spec_snippets_verbatim(server: LiveServer) -> None:
    # In dev mode the client acts as the dev owner: every snippet runs with no setup.
    with FabricClient(base_url=server.base_url) as fabric:
        # Organizations
        org = fabric.create_organization(slug="acme", name="Acme Corp")
        orgs = fabric.list_organizations()
        org = fabric.get_organization(org["id"])
        members = fabric.list_org_members(org["id"])

        # Teams
        team = fabric.create_team(org["id"], slug="engineering", name="Engineering")
        teams = fabric.list_org_teams(org["id"])

        # Invitations
        inv = fabric.create_invitation(org["id"], "new@example.com", role="member")
        fabric.accept_invitation(inv["id"])
        fabric.revoke_invitation(inv["id"])

        # Current user
        me = fabric.get_me()
        my_orgs = fabric.get_my_organizations()
        my_teams = fabric.get_my_teams()
        my_perms = fabric.get_my_permissions()

        # Authorization checks
        can_edit = fabric.check_permission(
            "workflow.edit", resource_type="workflow", resource_id=wf_id
        )

        # Batch check
        results = fabric.check_permissions(
            [
                {"action": "workflow.run", "resource_type": "workflow"},
                {"action": "job.create"},
            ]
        )

        key = fabric.create_api_key("ci-pipeline", org["id"], scopes=["workflow.run"])
        keys = fabric.list_api_keys()
        fabric.rotate_api_key(key["id"])
        fabric.disable_api_key(key["id"])
        fabric.delete_api_key(key["id"])

        fabric.set_secret("OPENAI_API_KEY", "sk-...")
        names = fabric.list_secrets()  # ["OPENAI_API_KEY"]
        fabric.delete_secret("OPENAI_API_KEY")

        assert {o["slug"] for o in orgs} >= {"acme", "default"}
        assert (org["slug"], org["name"]) == ("acme", "Acme Corp")
        assert [(m["principal_id"], m["role"]) for m in members] == [(me["principal_id"], "owner")]
        assert teams == [team]
        assert {o["slug"]: o["role"] for o in my_orgs}["acme"] == "owner"
        assert [t["slug"] for t in my_teams] == ["engineering"]
        assert any(p["organization_id"] == org["id"] for p in my_perms)
        assert can_edit is False
        assert [r["allowed"] for r in results] == [True, True]
        assert key["key"].startswith("fab_live_")
        assert [k["id"] for k in keys] == [key["id"]]
        assert names == ["OPENAI_API_KEY"]
        assert fabric.list_secrets() == []


def outbox_token(server: LiveServer, to: str, path: str) -> str:
    mails = httpx.get(f"{server.base_url}/v1/dev/outbox", params={"to": to}).json()["data"]
    match = re.search(rf"{re.escape(path)}\?token=([^\s&]+)", mails[0]["body"])
    assert match, mails
    return match.group(1)


def test_two_people_and_a_key(server: LiveServer) -> None:
    with (
        FabricClient(base_url=server.base_url) as owner,
        FabricClient(base_url=server.base_url) as newcomer,
    ):
        owner.signup("owner@example.com", "password123")
        org = owner.create_organization(slug="acme", name="Acme Corp")
        team = owner.create_team(org["id"], slug="engineering", name="Engineering")

        newcomer.signup("new@example.com", "password123")
        newcomer.verify_email(outbox_token(server, "new@example.com", "/v1/auth/verify"))
        inv = owner.create_invitation(
            org["id"], "new@example.com", role="member", team_id=team["id"]
        )
        with pytest.raises(FabricConflictError):
            owner.create_invitation(org["id"], "new@example.com")
        with pytest.raises(FabricForbiddenError):
            owner.accept_invitation(inv["id"])  # sent to someone else
        membership = newcomer.accept_invitation(inv["id"])
        assert (membership["role"], membership["email"]) == ("member", "new@example.com")
        with pytest.raises(FabricConflictError) as twice:
            newcomer.accept_invitation(inv["id"])
        assert twice.value.code == "invitation_already_accepted"
        assert {m["email"] for m in owner.list_org_members(org["id"])} == {
            "owner@example.com",
            "new@example.com",
        }
        assert [t["id"] for t in newcomer.get_my_teams()] == [team["id"]]
        with pytest.raises(FabricForbiddenError):
            newcomer.create_team(org["id"], slug="mine", name="Mine")
        assert newcomer.check_permission("job.create", "organization", org["id"]) is True
        assert newcomer.check_permission("team.create", "organization", org["id"]) is False

        key = owner.create_api_key("ci-pipeline", org["id"], scopes=["job.create", "job.read"])
        with FabricClient(
            base_url=server.base_url, api_key=key["key"], organization_id=org["id"]
        ) as ci:
            job = ci.create_job(modality="text", input={"prompt": "from CI"})
            assert job["organization_id"] == org["id"]
            assert ci.get_me()["api_key_id"] == key["id"]
            assert ci.check_permission("job.read", "job", job["id"]) is True
            assert ci.check_permission("organization.update") is False
            with pytest.raises(FabricForbiddenError):
                ci.create_team(org["id"], slug="ci", name="CI")
            with pytest.raises(FabricForbiddenError):
                ci.set_secret("TOKEN", "x")  # secret.manage is not in its scopes

            rotated = owner.rotate_api_key(key["id"])
            with pytest.raises(FabricAuthError):
                ci.get_me()
        with FabricClient(base_url=server.base_url, api_key=rotated["key"]) as ci:
            assert ci.get_me()["organization_id"] == org["id"]
            owner.disable_api_key(key["id"])
            with pytest.raises(FabricAuthError):
                ci.get_me()
        listed = owner.list_api_keys()
        assert [(k["id"], k["disabled"]) for k in listed] == [(key["id"], True)]
        assert "key" not in listed[0]
        owner.delete_api_key(key["id"])
        assert owner.list_api_keys() == []

    anonymous = FabricClient(base_url=server.base_url, organization_id=org["id"])
    with anonymous, pytest.raises(FabricNotFoundError):
        anonymous.list_secrets()  # the dev owner is not a member of acme


def test_managing_an_organization(server: LiveServer) -> None:
    with (
        FabricClient(base_url=server.base_url) as owner,
        FabricClient(base_url=server.base_url) as newcomer,
    ):
        owner.signup("owner@example.com", "password123")
        org = owner.create_organization(slug="acme", name="Acme Corp")
        owner.create_organization(slug="taken", name="Taken")
        team = owner.create_team(org["id"], slug="engineering", name="Engineering")
        assert owner.get_team(team["id"]) == team

        org = owner.update_organization(org["id"], name="Acme Inc", slug="acme-inc")
        assert (org["name"], org["slug"]) == ("Acme Inc", "acme-inc")
        with pytest.raises(FabricConflictError):
            owner.update_organization(org["id"], slug="taken")

        newcomer.signup("new@example.com", "password123")
        newcomer.verify_email(outbox_token(server, "new@example.com", "/v1/auth/verify"))
        newcomer_id = newcomer.get_me()["principal_id"]
        inv = owner.create_invitation(org["id"], "new@example.com", team_id=team["id"])
        newcomer.accept_invitation(inv["id"])
        assert owner.update_org_member(org["id"], newcomer_id, "admin")["role"] == "admin"
        key = newcomer.create_api_key("ci", org["id"])

        archived = owner.archive_organization(org["id"])
        assert archived["archived"] is True
        mine = {o["id"]: o["archived"] for o in newcomer.get_my_organizations()}
        assert mine[org["id"]] is True
        with pytest.raises(FabricConflictError) as refused:
            newcomer.create_team(org["id"], slug="more", name="More")
        assert refused.value.code == "organization_archived"
        with pytest.raises(FabricForbiddenError):
            newcomer.archive_organization(org["id"])  # owners only
        assert len(newcomer.list_org_members(org["id"])) == 2  # reads still work
        with FabricClient(base_url=server.base_url, api_key=key["key"]) as ci:
            assert ci.get_organization(org["id"])["archived"] is True

            # Removing a member takes access away at once, even while archived.
            owner.remove_org_member(org["id"], newcomer_id)
            with pytest.raises(FabricNotFoundError):
                newcomer.get_organization(org["id"])
            with pytest.raises(FabricAuthError):
                ci.get_me()
        with pytest.raises(FabricConflictError) as last:
            owner.remove_org_member(org["id"], owner.get_me()["principal_id"])
        assert last.value.code == "last_owner"

        assert owner.unarchive_organization(org["id"])["archived"] is False
        owner.create_team(org["id"], slug="more", name="More")
        assert [m["email"] for m in owner.list_org_members(org["id"])] == ["owner@example.com"]


def test_secrets_of_a_signed_in_owner(server: LiveServer) -> None:
    with FabricClient(base_url=server.base_url) as fabric:
        fabric.signup("owner@example.com", "password123")
        org = fabric.create_organization(slug="acme", name="Acme Corp")
    with FabricClient(base_url=server.base_url, organization_id=org["id"]) as fabric:
        fabric.login("owner@example.com", "password123")
        secret = fabric.set_secret("OPENAI_API_KEY", "sk-one")
        assert set(secret) == {"name", "created_at", "updated_at"}
        fabric.set_secret("OPENAI_API_KEY", "sk-two")
        fabric.set_secret("ANTHROPIC_API_KEY", "sk-three")
        assert fabric.list_secrets() == ["ANTHROPIC_API_KEY", "OPENAI_API_KEY"]
        fabric.delete_secret("OPENAI_API_KEY")
        with pytest.raises(FabricNotFoundError):
            fabric.delete_secret("OPENAI_API_KEY")
        assert fabric.list_secrets() == ["ANTHROPIC_API_KEY"]


async def test_async_client_twin(server: LiveServer) -> None:
    async with AsyncFabricClient(base_url=server.base_url) as fabric:
        org = await fabric.create_organization(slug="async-co", name="Async Co")
        team = await fabric.create_team(org["id"], slug="core", name="Core")
        assert await fabric.list_org_teams(org["id"]) == [team]
        inv = await fabric.create_invitation(org["id"], "someone@example.com")
        assert (await fabric.revoke_invitation(inv["id"]))["status"] == "revoked"
        assert await fabric.check_permission("team.create", "team", team["id"]) is True
        key = await fabric.create_api_key("async", org["id"])
        assert (await fabric.disable_api_key(key["id"]))["disabled"] is True
        assert (await fabric.get_me())["kind"] == "dev"
        await fabric.set_secret("ASYNC_SECRET", "value")
        assert await fabric.list_secrets() == ["ASYNC_SECRET"]
        await fabric.delete_secret("ASYNC_SECRET")
        assert await fabric.get_team(team["id"]) == team
        renamed = await fabric.update_organization(org["id"], name="Async Inc")
        assert renamed["name"] == "Async Inc"
        assert (await fabric.archive_organization(org["id"]))["archived"] is True
        with pytest.raises(FabricConflictError):
            await fabric.create_team(org["id"], slug="late", name="Late")
        assert (await fabric.unarchive_organization(org["id"]))["archived"] is False
        me = (await fabric.get_me())["principal_id"]
        with pytest.raises(FabricConflictError):
            await fabric.update_org_member(org["id"], me, "admin")  # the last owner
        with pytest.raises(FabricConflictError):
            await fabric.remove_org_member(org["id"], me)


def test_an_organization_lowers_its_own_limits(server: LiveServer) -> None:
    with FabricClient(base_url=server.base_url) as fabric:
        org = fabric.create_organization(slug="capped", name="Capped")
        limits = fabric.get_org_limits(org["id"])
        assert limits["overrides"] == {"max_active_jobs": None, "max_active_runs": None}
        assert limits["max_active_jobs"] == limits["defaults"]["max_active_jobs"]
        lowered = fabric.set_org_limits(org["id"], max_active_runs=3)
        assert lowered["max_active_runs"] == 3
        assert lowered["overrides"]["max_active_jobs"] is None  # left out: kept
        reset = fabric.set_org_limits(org["id"], max_active_runs=None)
        assert reset["max_active_runs"] == reset["defaults"]["max_active_runs"]
