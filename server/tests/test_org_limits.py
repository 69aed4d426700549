"""Per-organization limits on unfinished jobs and runs, changed through the API: admins lower
their organization's, platform administrators may raise them; the new limit applies at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_helpers import assert_error
from tenancy_helpers import create_org, data, events_of, verified_user
from workflow_helpers import app_client, define

from fabric_server.services import Services
from fabric_server.settings import DEFAULT_ORGANIZATION_ID
from fabric_server.testing import fast_settings

JOB = {"modality": "text", "input": {"prompt": "p"}}
LIMITS = f"/v1/organizations/{DEFAULT_ORGANIZATION_ID}/limits"


@pytest.fixture
async def api(
    database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    # No workers: what is submitted stays unfinished, so the counts only grow.
    settings = fast_settings(
        database_url, tmp_path, run_workers=False, org_max_active_jobs=5, org_max_active_runs=5
    )
    async with app_client(settings) as pair:
        yield pair


async def test_the_server_defaults_apply_until_an_organization_sets_its_own(
    api: tuple[httpx.AsyncClient, Services],
) -> None:
    client, _ = api
    limits = data(await client.get(LIMITS))
    assert limits["max_active_jobs"] == 5
    assert limits["max_active_runs"] == 5
    assert limits["overrides"] == {"max_active_jobs": None, "max_active_runs": None}
    assert limits["defaults"] == {"max_active_jobs": 5, "max_active_runs": 5}


async def test_a_lowered_limit_refuses_the_next_job_and_run_at_once(
    api: tuple[httpx.AsyncClient, Services],
) -> None:
    client, _ = api
    for _ in range(2):
        data(await client.post("/v1/jobs", json=JOB), 201)
    changed = data(await client.put(LIMITS, json={"max_active_jobs": 2, "max_active_runs": 1}))
    assert changed["max_active_jobs"] == 2
    assert changed["overrides"] == {"max_active_jobs": 2, "max_active_runs": 1}
    refused = assert_error(await client.post("/v1/jobs", json=JOB), 429, "rate_limited")
    assert "the organization's own limit" in refused["error"]["message"]
    assert refused["error"]["details"] == {"limit": 2, "in_flight": 2}

    definition = await define(client, [{"key": "a", "operation": "workflow.noop"}])
    body = {"workflow_definition_id": definition["id"]}
    data(await client.post("/v1/workflow-runs", json=body), 201)
    assert_error(await client.post("/v1/workflow-runs", json=body), 429, "rate_limited")

    # Back to the server's default (5): the third job is accepted.
    reset = data(await client.put(LIMITS, json={"max_active_jobs": None}))
    assert reset["max_active_jobs"] == 5
    assert reset["overrides"] == {"max_active_jobs": None, "max_active_runs": 1}
    data(await client.post("/v1/jobs", json=JOB), 201)


async def test_admins_may_lower_but_only_platform_administrators_raise(
    api: tuple[httpx.AsyncClient, Services],
) -> None:
    client, services = api
    ada = await verified_user(client, services, "ada@example.com")
    org = await create_org(client, ada, "ada-co")
    path = f"/v1/organizations/{org['id']}/limits"
    lowered = data(await client.put(path, json={"max_active_jobs": 1}, headers=ada.headers))
    assert lowered["max_active_jobs"] == 1
    for raising in ({"max_active_jobs": 6}, {"max_active_runs": 0}):
        refused = await client.put(path, json=raising, headers=ada.headers)
        body = assert_error(refused, 403, "forbidden")
        assert "platform administrator" in body["error"]["message"]
    assert data(await client.get(path, headers=ada.headers))["max_active_jobs"] == 1
    # The dev owner is a platform administrator in dev mode: it may lift the limit.
    lifted = data(await client.put(path, json={"max_active_jobs": 0, "max_active_runs": 50}))
    assert (lifted["max_active_jobs"], lifted["max_active_runs"]) == (0, 50)
    events = await _limit_events(services, org["id"])
    assert [event["changed"] for event in events] == [
        {"max_active_jobs": 1},
        {"max_active_jobs": 0, "max_active_runs": 50},
    ]


async def test_bad_limits_are_refused(api: tuple[httpx.AsyncClient, Services]) -> None:
    client, _ = api
    for body in ({"max_active_jobs": -1}, {"max_active_jobs": "5"}, {"other": 1}):
        assert_error(await client.put(LIMITS, json=body), 400, "validation_failed")


async def _limit_events(services: Services, org_id: str) -> list[dict[str, Any]]:
    return [
        event.payload
        for event in await events_of(services, "organization.limits_updated")
        if event.organization_id == org_id
    ]
