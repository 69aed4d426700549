"""Workflow runs over HTTP: lifecycle, idempotency, priority, retries, cancel, resume, log."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
from server_helpers import assert_error, eventually
from sqlalchemy import select
from workflow_helpers import (
    app_client,
    define,
    event_kinds,
    get_run,
    node,
    run_log,
    run_workflow,
    start,
    wait_for_run,
)

from fabric_server.engine.models import WorkItem
from fabric_server.engine.worker import Worker
from fabric_server.services import Services
from fabric_server.settings import DEFAULT_ORGANIZATION_ID, DEV_OWNER_ID
from fabric_server.testing import fast_settings

NOOP = {"operation": "workflow.noop"}
APPROVAL = [{"key": "approve", "operation": "workflow.approval"}]


def slow(key: str, delay_ms: int, **config: object) -> dict[str, object]:
    params = {"delay_ms": delay_ms}
    return {
        "key": key,
        "operation": "ai.generate",
        "config": {"prompt_template": key, "params": params, **config},
    }


async def test_a_run_is_created_pending_then_started_and_completed(
    client: httpx.AsyncClient,
) -> None:
    definition = await define(
        client,
        [{"key": "a", **NOOP}, {"key": "b", **NOOP, "depends_on": ["a"]}],
    )
    created = await client.post(
        "/v1/workflow-runs",
        json={
            "workflow_definition_id": definition["id"],
            "context": {"topic": "bees"},
            "metadata": {"team": "blue"},
            "environment": "staging",
        },
    )
    assert created.status_code == 201
    run = created.json()["data"]
    assert run["status"] == "pending"
    assert run["workflow_definition_id"] == definition["id"]
    assert run["workflow_name"] == definition["name"]
    assert run["organization_id"] == DEFAULT_ORGANIZATION_ID
    assert run["created_by"] == DEV_OWNER_ID
    assert run["context"] == {"topic": "bees"}
    assert run["metadata"] == {"team": "blue"}
    assert run["environment"] == "staging"
    assert run["parent_run_id"] is None
    assert run["progress"] == {
        "total_tasks": 2,
        "completed_tasks": 0,
        "current_task": None,
        "percentage": 0.0,
    }
    assert [(n["node_key"], n["status"]) for n in run["nodes"]] == [
        ("a", "pending"),
        ("b", "pending"),
    ]

    started = await client.post(f"/v1/workflow-runs/{run['id']}/start")
    assert started.status_code == 202
    done = await wait_for_run(client, run["id"])
    assert done["status"] == "completed"
    assert done["output"] == {"b": {}}
    assert done["progress"]["percentage"] == 100.0
    assert done["completed_at"] >= done["started_at"] >= done["created_at"]
    # Both path families serve the same run.
    alias = (await client.get(f"/v1/workflows/runs/{run['id']}")).json()["data"]
    assert alias == done
    assert await event_kinds(client, run["id"]) == [
        ("workflow.run.created", None),
        ("workflow.run.queued", None),
        ("workflow.run.started", None),
        ("workflow.node.ready", "a"),
        ("workflow.node.started", "a"),
        ("workflow.node.completed", "a"),
        ("workflow.node.ready", "b"),
        ("workflow.node.started", "b"),
        ("workflow.node.completed", "b"),
        ("workflow.run.completed", None),
    ]


async def test_starting_twice_changes_nothing(client: httpx.AsyncClient) -> None:
    definition = await define(client, APPROVAL)
    run = await start(client, definition["id"])
    again = await client.post(f"/v1/workflow-runs/{run['id']}/start", json={"priority": 9})
    assert again.status_code == 202
    await wait_for_run(client, run["id"], "waiting")
    kinds = [k for k, _ in await event_kinds(client, run["id"])]
    assert kinds.count("workflow.run.queued") == 1
    assert kinds.count("workflow.run.started") == 1


async def test_idempotency_key_returns_the_original_run(client: httpx.AsyncClient) -> None:
    definition = await define(client, [{"key": "a", **NOOP}])
    body = {"workflow_definition_id": definition["id"], "idempotency_key": "run-once"}
    first = await client.post("/v1/workflow-runs", json=body)
    second = await client.post("/v1/workflow-runs", json=body)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["data"]["id"] == second.json()["data"]["id"]
    assert second.json()["data"]["idempotency_key"] == "run-once"
    changed = await client.post("/v1/workflow-runs", json={**body, "context": {"x": 1}})
    assert_error(changed, 409, "conflict")
    listed = (await client.get("/v1/workflow-runs")).json()["data"]["items"]
    assert len(listed) == 1


async def test_higher_priority_runs_first(database_url: str, tmp_path: Path) -> None:
    settings = fast_settings(database_url, tmp_path, run_workers=False)
    async with app_client(settings) as (client, services):
        definition = await define(
            client, [{"key": "a", **NOOP}, {"key": "b", **NOOP, "depends_on": ["a"]}]
        )
        runs = {}
        for priority in (0, 10, -5, 5):
            created = await client.post(
                "/v1/workflow-runs",
                json={"workflow_definition_id": definition["id"], "priority": priority},
            )
            run_id = created.json()["data"]["id"]
            await client.post(f"/v1/workflow-runs/{run_id}/start", json={})
            runs[run_id] = priority
        boosted = next(run_id for run_id, p in runs.items() if p == -5)
        await client.post(f"/v1/workflow-runs/{boosted}/start", json={"priority": 100})

        worker = Worker(services.queue, services.handlers, concurrency=1, poll_interval=0.05)
        worker.start()
        try:
            finished = [await wait_for_run(client, run_id) for run_id in runs]
        finally:
            await worker.stop()
    order = sorted(finished, key=lambda run: run["completed_at"])
    # The second start of an already queued run does not re-prioritise it.
    assert [runs[run["id"]] for run in order] == [10, 5, 0, -5]


async def test_start_with_priority_sets_the_run_priority(client: httpx.AsyncClient) -> None:
    definition = await define(client, APPROVAL)
    created = (
        await client.post("/v1/workflow-runs", json={"workflow_definition_id": definition["id"]})
    ).json()["data"]
    started = await client.post(f"/v1/workflow-runs/{created['id']}/start", json={"priority": 7})
    assert started.json()["data"]["priority"] == 7


async def test_a_node_retries_then_fails_the_run_and_skips_dependants(
    client: httpx.AsyncClient,
) -> None:
    nodes = [
        {**slow("flaky", 2000), "policy": {"timeout_ms": 100, "max_retries": 2}},
        {"key": "after", **NOOP, "depends_on": ["flaky"]},
        {"key": "later", **NOOP, "depends_on": ["after"]},
    ]
    run = await run_workflow(client, nodes)
    assert run["status"] == "failed"
    assert "flaky" in run["error"]
    assert "timed out" in run["error"]
    flaky = node(run, "flaky")
    assert flaky["status"] == "failed"
    assert flaky["attempts"] == 3
    assert [node(run, k)["status"] for k in ("after", "later")] == ["skipped", "skipped"]
    events = (await run_log(client, run["id"]))["events"]
    kinds = [e["kind"] for e in events]
    assert kinds.count("workflow.node.started") == 3
    assert kinds.count("workflow.node.retrying") == 2
    assert kinds[-1] == "workflow.run.failed"
    failed = next(e for e in events if e["kind"] == "workflow.node.failed")
    assert "timed out" in failed["payload"]["error"]
    assert events[-1]["payload"]["error"] == run["error"]
    skipped = [e for e in events if e["kind"] == "workflow.node.skipped"]
    assert {e["node_key"] for e in skipped} == {"after", "later"}
    assert all("upstream node flaky failed" in e["payload"]["reason"] for e in skipped)


async def test_a_missing_template_variable_fails_the_node_clearly(
    client: httpx.AsyncClient,
) -> None:
    nodes = [
        {
            "key": "say",
            "operation": "ai.generate",
            "config": {"prompt_template": "About {{context.topic.name}}"},
        }
    ]
    run = await run_workflow(client, nodes, {"topic": {}})
    assert run["status"] == "failed"
    say = node(run, "say")
    assert say["attempts"] == 1  # not retried: retrying cannot help
    assert say["error"] == (
        "config.prompt_template: template variable `context.topic.name` has no value"
    )


async def test_cancel_a_pending_run(client: httpx.AsyncClient) -> None:
    definition = await define(client, [{"key": "a", **NOOP}])
    run = (
        await client.post("/v1/workflow-runs", json={"workflow_definition_id": definition["id"]})
    ).json()["data"]
    cancelled = await client.post(f"/v1/workflow-runs/{run['id']}/cancel")
    assert cancelled.status_code == 200
    data = cancelled.json()["data"]
    assert data["status"] == "cancelled"
    assert node(data, "a")["status"] == "skipped"
    assert_error(await client.post(f"/v1/workflow-runs/{run['id']}/start"), 409, "conflict")
    assert_error(await client.post(f"/v1/workflow-runs/{run['id']}/cancel"), 409, "conflict")


async def test_cancel_interrupts_a_running_node(
    client: httpx.AsyncClient, services: Services
) -> None:
    definition = await define(
        client, [slow("long", 20_000), {"key": "next", **NOOP, "depends_on": ["long"]}]
    )
    run = await start(client, definition["id"])
    await eventually(
        lambda: get_run(client, run["id"]), lambda r: node(r, "long")["status"] == "running"
    )
    response = await client.post(
        f"/v1/workflows/runs/{run['id']}/cancel", json={"reason": "changed my mind"}
    )
    assert response.status_code == 200
    cancelled = response.json()["data"]
    assert cancelled["status"] == "cancelled"
    assert [n["status"] for n in cancelled["nodes"]] == ["skipped", "skipped"]

    # The worker notices, abandons the 20 s provider call and finishes the work item.
    async def running_items() -> list[str]:
        async with services.db.read() as session:
            rows = await session.scalars(
                select(WorkItem.id).where(
                    WorkItem.kind == "workflow.node", WorkItem.status == "running"
                )
            )
            return list(rows)

    await eventually(running_items, lambda items: items == [], timeout=5)
    final = (await run_log(client, run["id"]))["events"]
    assert final[-1]["kind"] == "workflow.run.cancelled"
    assert final[-1]["payload"] == {"reason": "changed my mind"}
    assert "workflow.node.completed" not in [e["kind"] for e in final]
    assert_error(await client.post(f"/v1/workflow-runs/{run['id']}/cancel"), 409, "conflict")


async def test_bulk_cancel_reports_what_it_skipped(client: httpx.AsyncClient) -> None:
    waiting = await define(client, APPROVAL)
    done = await define(client, [{"key": "a", **NOOP}])
    first = await start(client, waiting["id"])
    second = await start(client, waiting["id"])
    finished = await run_workflow(client, [{"key": "a", **NOOP}])
    assert finished["status"] == "completed"
    await wait_for_run(client, first["id"], "waiting")
    missing = str(uuid.uuid4())
    response = await client.post(
        "/v1/workflow-runs/bulk-cancel",
        json={"run_ids": [first["id"], second["id"], finished["id"], missing, first["id"]]},
    )
    assert response.status_code == 200
    result = response.json()["data"]
    assert result["cancelled"] == [first["id"], second["id"]]
    assert result["skipped"] == [
        {"id": finished["id"], "reason": "already_completed"},
        {"id": missing, "reason": "not_found"},
    ]
    for run_id in (first["id"], second["id"]):
        assert (await get_run(client, run_id))["status"] == "cancelled"
    assert done["id"]


async def test_resume_errors(client: httpx.AsyncClient) -> None:
    definition = await define(
        client, [*APPROVAL, {"key": "after", **NOOP, "depends_on": ["approve"]}]
    )
    run = await start(client, definition["id"])
    await wait_for_run(client, run["id"], "waiting")
    base = f"/v1/workflow-runs/{run['id']}/nodes"
    assert_error(await client.post(f"{base}/nope/resume", json={}), 404, "not_found")
    assert_error(await client.post(f"{base}/after/resume", json={}), 409, "conflict")
    missing = f"/v1/workflow-runs/{uuid.uuid4()}/nodes/approve/resume"
    assert_error(await client.post(missing, json={}), 404, "not_found")
    assert (await client.post(f"{base}/approve/resume")).status_code == 200
    await wait_for_run(client, run["id"], "completed")
    assert_error(await client.post(f"{base}/approve/resume", json={}), 409, "conflict")


async def test_unknown_runs_are_not_found(client: httpx.AsyncClient) -> None:
    missing = str(uuid.uuid4())
    for method, path in [
        ("GET", f"/v1/workflow-runs/{missing}"),
        ("GET", f"/v1/workflows/runs/{missing}"),
        ("POST", f"/v1/workflow-runs/{missing}/start"),
        ("POST", f"/v1/workflow-runs/{missing}/cancel"),
        ("POST", f"/v1/workflows/runs/{missing}/cancel"),
        ("GET", f"/v1/workflow-runs/{missing}/log"),
        ("GET", f"/v1/workflow-runs/{missing}/children"),
        ("GET", f"/v1/workflow-runs/{missing}/events"),
    ]:
        assert_error(await client.request(method, path), 404, "not_found")
    body = {"workflow_definition_id": missing}
    assert_error(await client.post("/v1/workflow-runs", json=body), 404, "not_found")


async def test_run_log_lists_nodes_and_events(client: httpx.AsyncClient) -> None:
    nodes = [
        {
            "key": "greet",
            "operation": "text.transform_basic",
            "config": {"operation": "template", "template": "hi {{context.name}}"},
        },
    ]
    run = await run_workflow(client, nodes, {"name": "ada"})
    log = await run_log(client, run["id"])
    assert log["run_id"] == run["id"]
    assert log["status"] == "completed"
    (greet,) = log["nodes"]
    assert greet["node_key"] == "greet"
    assert greet["operation"] == "text.transform_basic"
    assert greet["status"] == "completed"
    assert greet["attempts"] == 1
    assert greet["input"] == {}
    assert greet["output"] == {"text": "hi ada"}
    assert greet["error"] is None
    assert greet["completed_at"] >= greet["started_at"]
    assert [e["kind"] for e in log["events"]][-1] == "workflow.run.completed"
    assert all(e["run_id"] == run["id"] for e in log["events"])
    completed = next(e for e in log["events"] if e["kind"] == "workflow.node.completed")
    assert completed["payload"]["output"] == {"text": "hi ada"}


async def test_list_runs_pages_and_filters(client: httpx.AsyncClient) -> None:
    definition = await define(client, APPROVAL)
    ids = [(await start(client, definition["id"]))["id"] for _ in range(3)]
    for run_id in ids:
        await wait_for_run(client, run_id, "waiting")
    await client.post(f"/v1/workflow-runs/{ids[0]}/cancel")
    seen, cursor = [], None
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/workflow-runs", params=params)).json()["data"]
        seen += [run["id"] for run in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    waiting = await client.get("/v1/workflow-runs", params={"status": "waiting"})
    assert [r["id"] for r in waiting.json()["data"]["items"]] == [ids[2], ids[1]]
    by_org = await client.get(
        "/v1/workflow-runs", params={"organization_id": DEFAULT_ORGANIZATION_ID, "limit": 1}
    )
    assert len(by_org.json()["data"]["items"]) == 1
    assert_error(
        await client.get("/v1/workflow-runs", params={"status": "sleeping"}),
        400,
        "validation_failed",
    )
