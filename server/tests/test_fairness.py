"""Fairness between organizations and kinds of work, and the limits on unfinished work.

One organization's long jobs, a slow webhook receiver or a saturated worker must not stall
another organization or keep a cancellation waiting; an organization cannot pile up
unbounded unfinished work.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_helpers import assert_error, eventually
from webhook_receiver import Receiver
from workflow_helpers import app_client, define, get_run, node, start

from fabric_server.settings import DEFAULT_ORGANIZATION_ID, Settings
from fabric_server.testing import fast_settings

LONG = {"modality": "text", "input": {"prompt": "slow"}, "params": {"delay_ms": 60_000}}
QUICK = {"modality": "text", "input": {"prompt": "quick"}}


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # A small worker, so the tests can fill it; a short grace period, since long jobs are
    # still running when each test ends.
    return fast_settings(
        database_url,
        tmp_path,
        worker_concurrency=4,
        webhook_concurrency=1,
        shutdown_grace_seconds=0.2,
    )


async def other_org(client: httpx.AsyncClient) -> str:
    created = await client.post("/v1/organizations", json={"slug": "bravo", "name": "Bravo"})
    assert created.status_code == 201, created.text
    org_id: str = created.json()["data"]["id"]
    return org_id


async def submit(client: httpx.AsyncClient, body: dict[str, Any], org: str) -> str:
    response = await client.post("/v1/jobs", json={**body, "organization_id": org})
    assert response.status_code == 201, response.text
    job_id: str = response.json()["data"]["id"]
    return job_id


async def statuses(client: httpx.AsyncClient, job_ids: list[str]) -> list[str]:
    return [(await client.get(f"/v1/jobs/{job_id}")).json()["data"]["status"] for job_id in job_ids]


async def test_long_jobs_of_one_organization_leave_room_for_another(
    client: httpx.AsyncClient,
) -> None:
    bravo = await other_org(client)
    alpha_jobs = [await submit(client, LONG, DEFAULT_ORGANIZATION_ID) for _ in range(6)]
    # Alpha alone takes all but the reserve of the four slots.
    await eventually(lambda: statuses(client, alpha_jobs), lambda s: s.count("started") == 3)

    quick = await submit(client, QUICK, bravo)
    done = (await client.get(f"/v1/jobs/{quick}", params={"wait": 30})).json()["data"]

    assert done["status"] == "completed"
    assert "completed" not in await statuses(client, alpha_jobs)  # still at it


async def test_a_slow_webhook_receiver_holds_no_job_slot(
    client: httpx.AsyncClient,
) -> None:
    release = threading.Event()

    def hang(_received: Any) -> tuple[int, dict[str, str], bytes]:
        release.wait(30)
        return 200, {}, b"ok"

    with Receiver(answer=hang) as receiver:
        hook = await client.post(
            "/v1/webhooks",
            json={
                "organization_id": DEFAULT_ORGANIZATION_ID,
                "url": receiver.url,
                "events": ["job.*"],
            },
        )
        assert hook.status_code == 201, hook.text
        try:
            first = [await submit(client, QUICK, DEFAULT_ORGANIZATION_ID) for _ in range(3)]
            await eventually(lambda: asyncio.sleep(0, len(receiver.requests)), lambda n: n >= 1)

            later = await submit(client, QUICK, DEFAULT_ORGANIZATION_ID)
            done = (await client.get(f"/v1/jobs/{later}", params={"wait": 30})).json()["data"]

            assert done["status"] == "completed"
            assert set(await statuses(client, first)) == {"completed"}
            assert len(receiver.requests) == 1  # the one delivery lane slot still hangs
        finally:
            release.set()


async def test_cancelling_a_run_reaches_its_children_while_the_worker_is_full(
    client: httpx.AsyncClient,
) -> None:
    await define(client, [{"key": "ask", "operation": "workflow.approval"}], name="needs-a-human")
    parent = await define(
        client,
        [
            {
                "key": "spread",
                "operation": "workflow.fan_out",
                "config": {"workflow_name": "needs-a-human"},
                "inputs": {"items": "$context.items"},
            }
        ],
    )
    run_id = (await start(client, parent["id"], {"items": [1, 2, 3, 4, 5]}))["id"]

    async def children() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = (
            await client.get(f"/v1/workflow-runs/{run_id}/children")
        ).json()["data"]
        return found

    await eventually(children, lambda c: len(c) == 5 and {r["status"] for r in c} == {"waiting"})
    # Fill the worker's job slots (and its queue) with long jobs.
    long_jobs = [await submit(client, LONG, DEFAULT_ORGANIZATION_ID) for _ in range(8)]

    cancelled = await client.post(f"/v1/workflow-runs/{run_id}/cancel", json={})
    assert cancelled.status_code == 200, cancelled.text

    ended = await eventually(children, lambda c: {r["status"] for r in c} == {"cancelled"})
    assert len(ended) == 5
    assert "completed" not in await statuses(client, long_jobs)


async def test_cancelling_a_run_reaches_its_grandchildren_while_the_worker_is_full(
    client: httpx.AsyncClient,
) -> None:
    await define(client, [{"key": "ask", "operation": "workflow.approval"}], name="leaf-waits")
    spread = {"key": "spread", "operation": "workflow.fan_out", "inputs": {}}
    await define(
        client,
        [
            {
                **spread,
                "config": {"workflow_name": "leaf-waits"},
                "inputs": {"items": "$context.item"},
            }
        ],
        name="middle",
    )
    parent = await define(
        client,
        [{**spread, "config": {"workflow_name": "middle"}, "inputs": {"items": "$context.items"}}],
    )
    run_id = (await start(client, parent["id"], {"items": [[1, 2], [3, 4]]}))["id"]

    async def below(run: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = (
            await client.get(f"/v1/workflow-runs/{run}/children")
        ).json()["data"]
        return found

    async def grandchildren() -> list[dict[str, Any]]:
        return [g for child in await below(run_id) for g in await below(child["id"])]

    await eventually(
        grandchildren, lambda g: len(g) == 4 and {r["status"] for r in g} == {"waiting"}
    )
    long_jobs = [await submit(client, LONG, DEFAULT_ORGANIZATION_ID) for _ in range(8)]

    cancelled = await client.post(f"/v1/workflow-runs/{run_id}/cancel", json={})
    assert cancelled.status_code == 200, cancelled.text

    await eventually(grandchildren, lambda g: {r["status"] for r in g} == {"cancelled"})
    assert {r["status"] for r in await below(run_id)} == {"cancelled"}
    assert "completed" not in await statuses(client, long_jobs)


async def test_a_run_tree_cannot_grow_past_its_limit(database_url: str, tmp_path: Path) -> None:
    settings = fast_settings(database_url, tmp_path, workflow_max_descendants=3)
    async with app_client(settings) as (client, _):
        await define(client, [{"key": "a", "operation": "workflow.noop"}], name="leaf")
        parent = await define(
            client,
            [
                {
                    "key": "spread",
                    "operation": "workflow.fan_out",
                    "config": {"workflow_name": "leaf"},
                    "inputs": {"items": "$context.items"},
                }
            ],
        )
        run_id = (await start(client, parent["id"], {"items": [1, 2, 3, 4]}))["id"]
        run = await eventually(lambda: get_run(client, run_id), lambda r: r["status"] == "failed")

        error = node(run, "spread")["error"]
        assert "FABRIC_WORKFLOW_MAX_DESCENDANTS" in error
        assert (await client.get(f"/v1/workflow-runs/{run_id}/children")).json()["data"] == []


async def test_unfinished_jobs_and_runs_are_limited_per_organization(
    database_url: str, tmp_path: Path
) -> None:
    settings = fast_settings(
        database_url,
        tmp_path,
        org_max_active_jobs=2,
        org_max_active_runs=1,
        shutdown_grace_seconds=0.2,
    )
    async with app_client(settings) as (client, _):
        for _ in range(2):
            await submit(client, LONG, DEFAULT_ORGANIZATION_ID)
        refused = await client.post("/v1/jobs", json=LONG)
        body = assert_error(refused, 429, "rate_limited")
        assert "FABRIC_ORG_MAX_ACTIVE_JOBS" in body["error"]["message"]
        assert refused.headers["retry-after"] == "1"

        definition = await define(client, [{"key": "ask", "operation": "workflow.approval"}])
        first = await client.post(
            "/v1/workflow-runs", json={"workflow_definition_id": definition["id"]}
        )
        assert first.status_code == 201, first.text
        second = await client.post(
            "/v1/workflow-runs", json={"workflow_definition_id": definition["id"]}
        )
        assert_error(second, 429, "rate_limited")
