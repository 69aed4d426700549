"""The schedules API: shapes, validation, authorization, history paging, audit."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from server_helpers import assert_error
from workflow_helpers import define

from fabric_server.access.models import Membership
from fabric_server.orgs.models import Organization
from fabric_server.services import Services
from fabric_server.settings import DEFAULT_ORGANIZATION_ID, DEV_OWNER_ID

NOOP = [{"key": "step", "operation": "workflow.noop"}]


async def create(client: httpx.AsyncClient, wf: str, **body: Any) -> httpx.Response:
    return await client.post(f"/v1/workflow-definitions/{wf}/schedules", json=body)


async def new_schedule(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    wf = (await define(client, NOOP))["id"]
    response = await create(client, wf, **{"cron_expression": "0 9 * * 1-5", **body})
    assert response.status_code == 201, response.text
    schedule: dict[str, Any] = response.json()["data"]
    return schedule


async def test_create_with_defaults_then_get_and_list(client: httpx.AsyncClient) -> None:
    wf = (await define(client, NOOP))["id"]
    response = await create(client, wf, cron_expression="  0 9 * * 1-5 ")
    assert response.status_code == 201, response.text
    schedule = response.json()["data"]
    assert set(schedule) == {
        "id",
        "workflow_definition_id",
        "organization_id",
        "cron_expression",
        "timezone",
        "enabled",
        "concurrency_policy",
        "catchup_policy",
        "input_context",
        "priority",
        "description",
        "next_run_at",
        "last_run_at",
        "last_run_id",
        "created_by",
        "created_at",
        "updated_at",
    }
    assert schedule["workflow_definition_id"] == wf
    assert schedule["organization_id"] == DEFAULT_ORGANIZATION_ID
    assert schedule["cron_expression"] == "0 9 * * 1-5"
    assert (schedule["timezone"], schedule["enabled"]) == ("UTC", True)
    assert (schedule["concurrency_policy"], schedule["catchup_policy"]) == ("allow", "skip")
    assert (schedule["input_context"], schedule["priority"]) == ({}, 0)
    assert schedule["next_run_at"].endswith("T09:00:00Z")
    assert schedule["last_run_at"] is None
    assert schedule["created_by"] == DEV_OWNER_ID

    got = await client.get(f"/v1/schedules/{schedule['id']}")
    assert got.json()["data"] == schedule
    listed = await client.get(f"/v1/workflow-definitions/{wf}/schedules")
    assert listed.json()["data"] == [schedule]


async def test_create_with_every_field(client: httpx.AsyncClient) -> None:
    wf = (await define(client, NOOP))["id"]
    response = await create(
        client,
        wf,
        cron_expression="@daily",
        timezone="europe/berlin",
        input_context={"topic": "news"},
        enabled=False,
        concurrency_policy="queue",
        catchup_policy="latest",
        priority=5,
        description="nightly digest",
        workflow_definition_id=wf,
    )
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert data["timezone"] == "Europe/Berlin"
    assert data["next_run_at"] is None  # disabled
    assert data["input_context"] == {"topic": "news"}
    assert (data["concurrency_policy"], data["catchup_policy"]) == ("queue", "latest")
    assert (data["priority"], data["description"]) == (5, "nightly digest")


@pytest.mark.parametrize(
    ("body", "path", "text"),
    [
        ({"cron_expression": "61 * * * *"}, "cron_expression", "minute: 61 is out of range"),
        ({"cron_expression": "* * * *"}, "cron_expression", "expected 5 fields"),
        ({"cron_expression": "0 0 31 2 *"}, "cron_expression", "never fires"),
        ({"cron_expression": "0 9 * * *", "timezone": "Moon/Base"}, "timezone", "IANA"),
        ({"cron_expression": "0 9 * * *", "concurrency_policy": "replace"}, "", "allow"),
        ({"cron_expression": "0 9 * * *", "catchup_policy": "all"}, "", "latest"),
        ({"cron_expression": "0 9 * * *", "priority": 5000}, "", "priority"),
        ({"cron_expression": "0 9 * * *", "colour": "red"}, "", "colour"),
        ({"cron_expression": "0 9 * * *", "workflow_definition_id": "other"}, "", "match"),
        ({}, "", "cron_expression"),
    ],
)
async def test_invalid_schedules_are_rejected_with_the_reason(
    client: httpx.AsyncClient, body: dict[str, Any], path: str, text: str
) -> None:
    wf = (await define(client, NOOP))["id"]
    # Cron, zone and path agreement are rules beyond the schema (422); the rest break it.
    status = 422 if path in ("cron_expression", "timezone") or text == "match" else 400
    error = assert_error(await create(client, wf, **body), status, "validation_failed")["error"]
    assert text in error["message"]
    if path:
        assert error["details"]["errors"][0]["path"] == path


async def test_update_changes_only_what_is_sent(client: httpx.AsyncClient) -> None:
    schedule = await new_schedule(client, input_context={"a": 1}, description="first")
    response = await client.patch(
        f"/v1/schedules/{schedule['id']}",
        json={"cron_expression": "0 8 * * *", "description": None, "concurrency_policy": "skip"},
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["cron_expression"] == "0 8 * * *"
    assert data["next_run_at"].endswith("T08:00:00Z")
    assert data["description"] is None
    assert data["concurrency_policy"] == "skip"
    assert data["input_context"] == {"a": 1}
    nulls = await client.patch(f"/v1/schedules/{schedule['id']}", json={"enabled": None})
    assert (
        "enabled cannot be null"
        in assert_error(nulls, 400, "validation_failed")["error"]["message"]
    )
    bad = await client.patch(f"/v1/schedules/{schedule['id']}", json={"timezone": "Nowhere"})
    assert_error(bad, 422, "validation_failed")
    empty = await client.patch(f"/v1/schedules/{schedule['id']}", json={})
    assert empty.json()["data"]["cron_expression"] == "0 8 * * *"


async def test_unknown_ids_are_not_found(client: httpx.AsyncClient) -> None:
    missing = str(uuid.uuid4())
    assert_error(await create(client, missing, cron_expression="@daily"), 404, "not_found")
    assert_error(
        await client.get(f"/v1/workflow-definitions/{missing}/schedules"), 404, "not_found"
    )
    for method, suffix in [("GET", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/trigger")]:
        response = await client.request(method, f"/v1/schedules/{missing}{suffix}", json={})
        assert_error(response, 404, "not_found")
    assert_error(await client.get(f"/v1/schedules/{missing}/history"), 404, "not_found")


async def test_history_pages_newest_first(client: httpx.AsyncClient) -> None:
    schedule = await new_schedule(client, enabled=False)
    run_ids = []
    for _ in range(5):
        response = await client.post(f"/v1/schedules/{schedule['id']}/trigger")
        assert response.status_code == 202, response.text
        run_ids.append(response.json()["data"]["run_id"])
    url = f"/v1/schedules/{schedule['id']}/history"
    first = await client.get(url, params={"limit": 2})
    assert [e["run_id"] for e in first.json()["data"]] == run_ids[::-1][:2]
    cursor = first.headers["x-next-cursor"]
    assert cursor == first.json()["data"][-1]["id"]
    second = await client.get(url, params={"limit": 2, "cursor": cursor})
    third = await client.get(url, params={"limit": 2, "cursor": second.headers["x-next-cursor"]})
    assert [e["run_id"] for e in second.json()["data"]] == run_ids[::-1][2:4]
    assert [e["run_id"] for e in third.json()["data"]] == run_ids[:1]
    assert "x-next-cursor" not in third.headers
    assert_error(await client.get(url, params={"cursor": "nope"}), 422, "invalid_cursor")


async def test_body_less_trigger_is_accepted(client: httpx.AsyncClient) -> None:
    schedule = await new_schedule(client)
    response = await client.post(
        f"/v1/schedules/{schedule['id']}/trigger", headers={"content-type": "application/json"}
    )
    assert response.status_code == 202, response.text
    data = response.json()["data"]
    assert set(data) == {"run_id", "schedule_id", "triggered_at", "trigger", "held"}
    assert data["trigger"] == "manual"


async def test_delete_removes_the_schedule_and_its_history(client: httpx.AsyncClient) -> None:
    schedule = await new_schedule(client)
    run_id = (await client.post(f"/v1/schedules/{schedule['id']}/trigger")).json()["data"]["run_id"]
    response = await client.delete(f"/v1/schedules/{schedule['id']}")
    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"id": schedule["id"], "deleted": True}
    assert_error(await client.get(f"/v1/schedules/{schedule['id']}"), 404, "not_found")
    assert_error(await client.delete(f"/v1/schedules/{schedule['id']}"), 404, "not_found")
    listed = await client.get(
        f"/v1/workflow-definitions/{schedule['workflow_definition_id']}/schedules"
    )
    assert listed.json()["data"] == []
    assert (await client.get(f"/v1/workflow-runs/{run_id}")).status_code == 200


async def test_mutations_are_audited(client: httpx.AsyncClient) -> None:
    schedule = await new_schedule(client)
    sid = schedule["id"]
    await client.patch(f"/v1/schedules/{sid}", json={"priority": 1})
    await client.post(f"/v1/schedules/{sid}/trigger")
    await client.delete(f"/v1/schedules/{sid}")
    logs = (await client.get("/v1/audit-logs")).json()["data"]["items"]
    actions = [row["action"] for row in logs]
    assert actions[:4] == [
        "schedule.delete",
        "schedule.trigger",
        "schedule.update",
        "schedule.create",
    ]
    assert all(row["resource_type"] == "schedule" for row in logs[:4])
    assert [row["resource_id"] for row in logs[:3]] == [sid] * 3


async def _member(services: Services, org_id: str, role: str) -> str:
    principal = str(uuid.uuid4())
    async with services.db.write() as session:
        session.add(Membership(organization_id=org_id, principal_id=principal, role=role))
    return principal


async def test_viewers_read_but_cannot_manage(
    client: httpx.AsyncClient, services: Services
) -> None:
    schedule = await new_schedule(client)
    viewer = {"x-principal-id": await _member(services, DEFAULT_ORGANIZATION_ID, "viewer")}
    member = {"x-principal-id": await _member(services, DEFAULT_ORGANIZATION_ID, "member")}
    sid, wf = schedule["id"], schedule["workflow_definition_id"]
    assert (await client.get(f"/v1/schedules/{sid}", headers=viewer)).status_code == 200
    history = await client.get(f"/v1/schedules/{sid}/history", headers=viewer)
    assert history.status_code == 200
    listed = await client.get(f"/v1/workflow-definitions/{wf}/schedules", headers=viewer)
    assert listed.status_code == 200
    for response in [
        await client.post(
            f"/v1/workflow-definitions/{wf}/schedules",
            json={"cron_expression": "@daily"},
            headers=viewer,
        ),
        await client.patch(f"/v1/schedules/{sid}", json={"priority": 2}, headers=viewer),
        await client.post(f"/v1/schedules/{sid}/trigger", headers=viewer),
        await client.delete(f"/v1/schedules/{sid}", headers=viewer),
    ]:
        assert "schedule.manage" in assert_error(response, 403, "forbidden")["error"]["message"]
    patched = await client.patch(f"/v1/schedules/{sid}", json={"priority": 2}, headers=member)
    assert patched.status_code == 200


async def test_schedules_of_other_organizations_are_invisible(
    client: httpx.AsyncClient, services: Services
) -> None:
    async with services.db.write() as session:
        org = Organization(slug="elsewhere", name="Elsewhere")
        session.add(org)
        await session.flush()
        org_id = org.id
    owner = {"x-principal-id": await _member(services, org_id, "owner")}
    definition = await client.post(
        "/v1/workflow-definitions",
        json={"name": "theirs", "organization_id": org_id, "nodes": NOOP},
        headers=owner,
    )
    wf = definition.json()["data"]["id"]
    created = await client.post(
        f"/v1/workflow-definitions/{wf}/schedules",
        json={"cron_expression": "@hourly"},
        headers=owner,
    )
    assert created.status_code == 201, created.text
    sid = created.json()["data"]["id"]

    assert_error(await client.get(f"/v1/schedules/{sid}"), 404, "not_found")
    assert_error(await client.get(f"/v1/schedules/{sid}/history"), 404, "not_found")
    assert_error(await client.patch(f"/v1/schedules/{sid}", json={}), 404, "not_found")
    assert_error(await client.post(f"/v1/schedules/{sid}/trigger"), 404, "not_found")
    assert_error(await client.delete(f"/v1/schedules/{sid}"), 404, "not_found")
    assert_error(await client.get(f"/v1/workflow-definitions/{wf}/schedules"), 404, "not_found")
    assert_error(await create(client, wf, cron_expression="@daily"), 404, "not_found")
    assert (await client.get(f"/v1/schedules/{sid}", headers=owner)).status_code == 200
