"""The audit log: every mutating call that changes something leaves one row, in its transaction."""

from __future__ import annotations

import uuid

import httpx
from fastapi.routing import APIRoute, iter_route_contexts
from server_helpers import assert_error

from fabric_server.access.models import Membership
from fabric_server.app import create_app
from fabric_server.audit.actions import declared_action
from fabric_server.audit.context import MUTATING_METHODS
from fabric_server.orgs.models import Organization
from fabric_server.services import Services
from fabric_server.settings import DEFAULT_ORGANIZATION_ID, DEV_OWNER_ID, Settings

ORG_LOGS = f"/v1/organizations/{DEFAULT_ORGANIZATION_ID}/audit-logs"


async def test_a_mutating_call_writes_one_row_with_who_what_where(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/v1/jobs",
        json={"modality": "text", "input": {"prompt": "audited"}},
        headers={"user-agent": "audit-test/1.0", "x-request-id": "audit-req-1"},
    )
    job_id = response.json()["data"]["id"]
    logs = (await client.get(ORG_LOGS)).json()["data"]["items"]
    assert len(logs) == 1
    row = logs[0]
    assert row["action"] == "job.create"
    assert row["resource_type"] == "job"
    assert row["resource_id"] == job_id
    assert row["organization_id"] == DEFAULT_ORGANIZATION_ID
    assert (row["actor_type"], row["actor_id"]) == ("dev", DEV_OWNER_ID)
    assert (row["method"], row["path"]) == ("POST", "/v1/jobs")
    assert row["request_id"] == "audit-req-1"
    assert row["user_agent"] == "audit-test/1.0"
    assert row["ip"]


async def test_reads_and_failed_calls_leave_no_row(client: httpx.AsyncClient) -> None:
    await client.get("/v1/jobs")
    assert_error(
        await client.post("/v1/jobs", json={"modality": "smell"}), 400, "validation_failed"
    )
    assert (await client.get(ORG_LOGS)).json()["data"]["items"] == []


async def test_your_own_actions_and_filters(client: httpx.AsyncClient) -> None:
    for i in range(3):
        await client.post("/v1/jobs", json={"modality": "text", "input": {"prompt": f"{i}"}})
    mine = (await client.get("/v1/audit-logs", params={"limit": 2})).json()["data"]
    assert len(mine["items"]) == 2
    rest = await client.get("/v1/audit-logs", params={"cursor": mine["next_cursor"]})
    assert len(rest.json()["data"]["items"]) == 1
    assert rest.json()["data"]["next_cursor"] is None
    filtered = await client.get(ORG_LOGS, params={"action": "job.delete"})
    assert filtered.json()["data"]["items"] == []


async def test_other_organizations_logs_are_invisible(
    client: httpx.AsyncClient, services: Services
) -> None:
    async with services.db.write() as session:
        org = Organization(slug="hidden", name="Hidden")
        session.add(org)
        await session.flush()
        session.add(
            Membership(organization_id=org.id, principal_id=str(uuid.uuid4()), role="owner")
        )
        hidden = org.id
    assert_error(await client.get(f"/v1/organizations/{hidden}/audit-logs"), 404, "not_found")


def test_every_mutating_route_declares_its_audit_action(settings: Settings) -> None:
    # `@audited("noun.verb")` above each handler that changes something; a new mutating
    # route without one fails here.
    app = create_app(settings)
    routes = list(iter_route_contexts(app.routes))
    mutating = [r for r in routes if isinstance(r.original_route, APIRoute)]
    mutating = [r for r in mutating if (r.methods or set()) & MUTATING_METHODS]
    assert len(mutating) > 30
    undeclared = [
        f"{sorted(r.methods or ())} {r.path} ({r.name})"
        for r in mutating
        if declared_action(r.original_route.endpoint) is None
    ]
    assert undeclared == []


async def test_account_calls_are_audited_with_their_user(client: httpx.AsyncClient) -> None:
    signup = await client.post(
        "/v1/auth/signup", json={"email": "audit@example.com", "password": "password123"}
    )
    auth = signup.json()["data"]
    headers = {"authorization": f"Bearer {auth['access_token']}"}
    assert (await client.post("/v1/auth/logout-all", headers=headers)).status_code == 200
    login = await client.post(
        "/v1/auth/login", json={"email": "audit@example.com", "password": "password123"}
    )
    headers = {"authorization": f"Bearer {login.json()['data']['access_token']}"}
    mine = (await client.get("/v1/audit-logs", headers=headers)).json()["data"]["items"]
    assert [row["action"] for row in mine] == ["auth.logout_all"]
    assert mine[0]["path"] == "/v1/auth/logout-all"
    assert mine[0]["actor_id"] == auth["user"]["id"]


async def test_changes_and_deletions_carry_their_organization(client: httpx.AsyncClient) -> None:
    definition = await client.post(
        "/v1/workflow-definitions",
        json={"name": "audited", "nodes": [{"key": "a", "operation": "workflow.noop"}]},
    )
    wf_id = definition.json()["data"]["id"]
    schedule = await client.post(
        f"/v1/workflow-definitions/{wf_id}/schedules", json={"cron_expression": "0 9 * * *"}
    )
    schedule_id = schedule.json()["data"]["id"]
    assert (await client.patch(f"/v1/schedules/{schedule_id}", json={"enabled": False})).is_success
    assert (await client.delete(f"/v1/schedules/{schedule_id}")).is_success
    logs = (await client.get(ORG_LOGS)).json()["data"]["items"]
    by_action = {row["action"]: row for row in logs}
    for action in ("schedule.update", "schedule.delete"):
        assert by_action[action]["organization_id"] == DEFAULT_ORGANIZATION_ID
        assert by_action[action]["resource_id"] == schedule_id
