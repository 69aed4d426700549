"""The audit log and authorization checks reveal nothing outside the caller's reach, and
every organization's log holds its own changes."""

from __future__ import annotations

from typing import Any

import httpx
from server_helpers import assert_error
from tenancy_helpers import create_org, data, verified_user

from fabric_server.services import Services
from fabric_server.settings import DEFAULT_ORGANIZATION_ID

ORG_LOGS = f"/v1/organizations/{DEFAULT_ORGANIZATION_ID}/audit-logs"


async def test_an_api_key_reads_only_its_organizations_part_of_its_creators_log(
    client: httpx.AsyncClient, services: Services
) -> None:
    owner = await verified_user(client, services, "owner@example.com")
    acme = await create_org(client, owner, "acme")
    other = await create_org(client, owner, "other")
    body = {"organization_id": other["id"], "slug": "secret-team", "name": "Secret"}
    data(await client.post("/v1/teams", json=body, headers=owner.headers), 201)
    key = data(
        await client.post(
            "/v1/api-keys",
            json={"name": "ci", "organization_id": acme["id"]},
            headers=owner.headers,
        ),
        201,
    )
    key_headers = {"authorization": f"Bearer {key['key']}"}
    rows = data(await client.get("/v1/audit-logs", headers=key_headers))["items"]
    assert rows, "the key's own organization has rows (the key was made there)"
    assert {row["organization_id"] for row in rows} == {acme["id"]}
    # The person sees their actions everywhere.
    mine = data(await client.get("/v1/audit-logs", headers=owner.headers))["items"]
    assert other["id"] in {row["organization_id"] for row in mine}


async def test_a_check_on_another_organizations_resource_names_no_organization(
    client: httpx.AsyncClient, services: Services
) -> None:
    owner = await verified_user(client, services, "owner@example.com")
    org = await create_org(client, owner, "acme")
    job = data(
        await client.post(
            "/v1/jobs",
            json={"organization_id": org["id"], "modality": "text", "input": {"prompt": "x"}},
            headers=owner.headers,
        ),
        201,
    )
    stranger = await verified_user(client, services, "stranger@example.com")
    checks: list[dict[str, Any]] = [
        {"action": "job.read", "resource_type": "job", "resource_id": job["id"]},
        {"action": "organization.read", "resource": f"organization:{org['id']}"},
    ]
    for check in checks:
        result = data(await client.post("/v1/authz/check", json=check, headers=stranger.headers))
        assert (result["allowed"], result["reason"]) == (False, "not_found")
        assert result["organization_id"] is None
    batch = data(
        await client.post(
            "/v1/authz/check-batch", json={"checks": checks}, headers=stranger.headers
        )
    )
    assert [r["organization_id"] for r in batch] == [None, None]
    # Naming the organization oneself gets it echoed back, and nothing more.
    named = {"action": "job.read", "organization_id": org["id"]}
    result = data(await client.post("/v1/authz/check", json=named, headers=stranger.headers))
    assert (result["allowed"], result["organization_id"]) == (False, org["id"])


async def test_audit_filters_take_times_without_a_zone_as_utc(client: httpx.AsyncClient) -> None:
    await client.post("/v1/jobs", json={"modality": "text", "input": {"prompt": "x"}})
    for since, expected in (("2000-01-01T00:00:00", 1), ("2999-01-01T00:00:00", 0)):
        response = await client.get(ORG_LOGS, params={"since": since})
        assert len(data(response)["items"]) == expected
        response = await client.get(ORG_LOGS, params={"until": since})
        assert len(data(response)["items"]) == 1 - expected
    assert_error(
        await client.get(ORG_LOGS, params={"since": "yesterday"}), 400, "validation_failed"
    )


async def test_gallery_items_and_bulk_cancels_appear_in_the_organizations_log(
    client: httpx.AsyncClient,
) -> None:
    gallery = data(
        await client.post("/v1/galleries", json={"kind": "style", "name": "Styles"}), 201
    )
    item = data(
        await client.post(
            f"/v1/galleries/{gallery['id']}/items",
            json={"url": "https://example.com/a.png", "tags": ["a"]},
        ),
        201,
    )
    definition = data(
        await client.post(
            "/v1/workflow-definitions",
            json={"name": "audited", "nodes": [{"key": "a", "operation": "workflow.noop"}]},
        ),
        201,
    )
    run = data(
        await client.post(
            "/v1/workflow-runs", json={"workflow_definition_id": definition["id"], "context": {}}
        ),
        201,
    )
    cancelled = data(
        await client.post("/v1/workflow-runs/bulk-cancel", json={"run_ids": [run["id"]]})
    )
    assert cancelled["cancelled"] == [run["id"]]
    rows = data(await client.get(ORG_LOGS, params={"limit": 100}))["items"]
    actions = {row["action"] for row in rows}
    assert {"item.add", "runs.bulk_cancel"} <= actions
    for row in rows:
        assert row["organization_id"] == DEFAULT_ORGANIZATION_ID, row
    added = next(row for row in rows if row["action"] == "item.add")
    assert added["resource_id"] in (gallery["id"], item["id"])
