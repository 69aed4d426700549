"""The SDK's audit-log calls, as the product spec writes them, against a real server."""

from __future__ import annotations

import pytest

from fabric_platform import AsyncFabricClient, FabricClient, FabricNotFoundError
from fabric_server.testing import LiveServer


def test_spec_audit_snippet(server: LiveServer) -> None:
    with FabricClient(base_url=server.base_url) as fabric:
        org = fabric.create_organization(slug="acme", name="Acme Corp")
        team = fabric.create_team(org["id"], slug="engineering", name="Engineering")

        # Audit logs
        org_logs = fabric.get_org_audit_logs(org["id"])
        my_logs = fabric.get_audit_logs()

        team_entry = org_logs["items"][0]  # newest first
        assert (team_entry["action"], team_entry["resource_id"]) == ("team.create", team["id"])
        assert team_entry["organization_id"] == org["id"]
        assert team_entry["actor_type"] == "dev"
        assert org_logs["next_cursor"] is None
        assert "team.create" in [e["action"] for e in my_logs["items"]]


def test_filters_pages_and_iterators(server: LiveServer) -> None:
    with FabricClient(base_url=server.base_url) as fabric:
        org_id = fabric.organization_id
        assert org_id is not None
        jobs = [fabric.create_job("text", {"prompt": f"audited {i}"})["id"] for i in range(5)]
        fabric.set_secret("AUDITED", "value")

        first = fabric.get_org_audit_logs(org_id, limit=2, action="job.create")
        assert [e["resource_id"] for e in first["items"]] == jobs[::-1][:2]
        assert first["next_cursor"]
        walked = list(fabric.iter_org_audit_logs(org_id, page_size=2, action="job.create"))
        assert [e["resource_id"] for e in walked] == jobs[::-1]

        secrets = fabric.get_org_audit_logs(org_id, resource_type="secret")
        assert [e["action"] for e in secrets["items"]] == ["secret.set"]
        everything = list(fabric.iter_org_audit_logs(org_id, page_size=4))
        later = fabric.get_org_audit_logs(org_id, since=everything[0]["created_at"])
        assert everything[0]["id"] in [e["id"] for e in later["items"]]

        mine = list(fabric.iter_audit_logs(page_size=3))
        assert [e["id"] for e in mine] == [e["id"] for e in everything]
        assert [e["id"] for e in fabric.iter_audit_logs(action="secret.set")] == [
            secrets["items"][0]["id"]
        ]


def test_an_organization_the_caller_is_not_in_is_not_found(server: LiveServer) -> None:
    with (
        FabricClient(base_url=server.base_url) as owner,
        FabricClient(base_url=server.base_url) as dev_owner,
    ):
        owner.signup("owner@example.com", "password123")
        org = owner.create_organization(slug="private", name="Private")
        assert owner.get_org_audit_logs(org["id"])["items"]
        with pytest.raises(FabricNotFoundError):
            dev_owner.get_org_audit_logs(org["id"])
        assert dev_owner.get_audit_logs()["items"] == []  # the owner's actions are not its own


async def test_async_twin(server: LiveServer) -> None:
    async with AsyncFabricClient(base_url=server.base_url) as fabric:
        org = await fabric.create_organization(slug="acme", name="Acme Corp")
        for slug in ("team-a", "team-b", "team-c"):
            await fabric.create_team(org["id"], slug=slug, name=slug.upper())

        page = await fabric.get_org_audit_logs(org["id"], limit=1, action="team.create")
        assert len(page["items"]) == 1
        walked = [e async for e in fabric.iter_org_audit_logs(org["id"], page_size=2)]
        assert [e["action"] for e in walked] == ["team.create"] * 3 + ["organization.create"]
        mine = [e async for e in fabric.iter_audit_logs(page_size=2, action="team.create")]
        assert len(mine) == 3
        assert (await fabric.get_audit_logs(limit=1))["next_cursor"]
