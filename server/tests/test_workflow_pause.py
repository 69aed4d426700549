"""Pausing and resuming a whole run: dispatch stops, in-flight work finishes, resume goes on."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
from schedule_helpers import at, harness
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
from fabric_server.settings import Settings
from fabric_server.testing import fast_settings
from fabric_server.workflows.models import WorkflowNodeState

NOOP = {"operation": "workflow.noop"}
GATED = [
    {"key": "gate", "operation": "workflow.approval"},
    {"key": "after", **NOOP, "depends_on": ["gate"]},
]


def slow(key: str, delay_ms: int) -> dict[str, Any]:
    return {
        "key": key,
        "operation": "ai.generate",
        "config": {"prompt_template": key, "params": {"delay_ms": delay_ms}},
    }


async def pause(client: httpx.AsyncClient, run_id: str, **body: Any) -> dict[str, Any]:
    response = await client.post(f"/v1/workflow-runs/{run_id}/pause", json=body)
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()["data"]
    return run


async def resume(client: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    response = await client.post(f"/v1/workflows/runs/{run_id}/resume")
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()["data"]
    return run


async def node_items(services: Services) -> dict[str, list[str]]:
    """The statuses of the `workflow.node` work items of each node key, oldest first."""
    async with services.db.read() as session:
        rows = await session.execute(
            select(WorkflowNodeState.node_key, WorkItem.status)
            .join(WorkflowNodeState, WorkflowNodeState.id == WorkItem.ref_id)
            .where(WorkItem.kind == "workflow.node")
            .order_by(WorkItem.created_at, WorkItem.id)
        )
        found: dict[str, list[str]] = {}
        for key, status in rows:
            found.setdefault(key, []).append(status)
        return found


async def test_a_paused_run_lets_its_running_node_finish_but_dispatches_nothing(
    client: httpx.AsyncClient,
) -> None:
    definition = await define(
        client, [slow("first", 2500), {"key": "second", **NOOP, "depends_on": ["first"]}]
    )
    run = await start(client, definition["id"])
    await eventually(
        lambda: get_run(client, run["id"]), lambda r: node(r, "first")["status"] == "running"
    )

    paused = await pause(client, run["id"], reason="hold on")
    assert paused["status"] == "paused"
    assert node(paused, "first")["status"] == "running"

    # The node that was executing completes and is recorded; its successor is not dispatched.
    held = await eventually(
        lambda: get_run(client, run["id"]), lambda r: node(r, "first")["status"] == "completed"
    )
    assert held["status"] == "paused"
    assert node(held, "second")["status"] == "pending"

    resumed = await resume(client, run["id"])
    assert resumed["status"] == "running"
    assert node(resumed, "second")["status"] in ("ready", "running", "completed")
    done = await wait_for_run(client, run["id"])
    assert done["status"] == "completed"

    log = await run_log(client, run["id"])
    kinds = [(e["kind"], e["node_key"]) for e in log["events"]]
    paused_at = kinds.index(("workflow.run.paused", None))
    resumed_at = kinds.index(("workflow.run.resumed", None))
    assert paused_at < kinds.index(("workflow.node.completed", "first")) < resumed_at
    assert resumed_at < kinds.index(("workflow.node.ready", "second"))
    payloads = {e["kind"]: e["payload"] for e in log["events"]}
    assert payloads["workflow.run.paused"] == {"reason": "hold on"}
    assert payloads["workflow.run.resumed"] == {"status": "running"}


async def test_a_node_resumed_while_the_run_is_paused_unblocks_nothing_until_resume(
    client: httpx.AsyncClient,
) -> None:
    definition = await define(client, GATED)
    run = await start(client, definition["id"])
    await wait_for_run(client, run["id"], "waiting")
    paused = await pause(client, run["id"])
    assert paused["status"] == "paused"

    released = await client.post(f"/v1/workflow-runs/{run['id']}/nodes/gate/resume", json={})
    assert released.status_code == 200, released.text
    held = released.json()["data"]
    assert held["status"] == "paused"
    assert [n["status"] for n in held["nodes"]] == ["completed", "pending"]

    assert (await resume(client, run["id"]))["status"] == "running"
    assert (await wait_for_run(client, run["id"]))["status"] == "completed"


async def test_a_paused_run_whose_last_node_completes_is_completed(
    client: httpx.AsyncClient,
) -> None:
    definition = await define(client, GATED[:1])
    run = await start(client, definition["id"])
    await wait_for_run(client, run["id"], "waiting")
    await pause(client, run["id"])
    released = await client.post(f"/v1/workflow-runs/{run['id']}/nodes/gate/resume", json={})
    assert released.json()["data"]["status"] == "completed"


async def test_resuming_a_run_whose_node_still_waits_makes_it_waiting_again(
    client: httpx.AsyncClient,
) -> None:
    definition = await define(client, GATED)
    run = await start(client, definition["id"])
    await wait_for_run(client, run["id"], "waiting")
    await pause(client, run["id"])
    resumed = await resume(client, run["id"])
    assert resumed["status"] == "waiting"
    log = await run_log(client, run["id"])
    assert log["events"][-1]["payload"] == {"status": "waiting"}


async def test_pause_and_resume_are_idempotent_and_refused_once_the_run_ended(
    client: httpx.AsyncClient,
) -> None:
    definition = await define(client, GATED)
    run = await start(client, definition["id"])
    await wait_for_run(client, run["id"], "waiting")
    await pause(client, run["id"])
    again = await client.post(f"/v1/workflows/runs/{run['id']}/pause", json={})
    assert again.status_code == 200
    assert again.json()["data"]["status"] == "paused"
    await resume(client, run["id"])
    not_paused = await client.post(f"/v1/workflow-runs/{run['id']}/resume")
    assert not_paused.status_code == 200
    assert not_paused.json()["data"]["status"] == "waiting"
    kinds = [k for k, _ in await event_kinds(client, run["id"])]
    assert kinds.count("workflow.run.paused") == 1
    assert kinds.count("workflow.run.resumed") == 1

    finished = await run_workflow(client, [{"key": "a", **NOOP}])
    for path in ("/v1/workflow-runs", "/v1/workflows/runs"):
        for action in ("pause", "resume"):
            conflict = await client.post(f"{path}/{finished['id']}/{action}", json={})
            body = assert_error(conflict, 409, "conflict")
            assert body["error"]["details"] == {"status": "completed"}


async def test_a_paused_run_can_be_cancelled(client: httpx.AsyncClient) -> None:
    definition = await define(client, GATED)
    run = await start(client, definition["id"])
    await wait_for_run(client, run["id"], "waiting")
    await pause(client, run["id"])
    cancelled = await client.post(f"/v1/workflow-runs/{run['id']}/cancel", json={})
    assert cancelled.status_code == 200
    data = cancelled.json()["data"]
    assert data["status"] == "cancelled"
    assert [n["status"] for n in data["nodes"]] == ["skipped", "skipped"]
    assert_error(await client.post(f"/v1/workflow-runs/{run['id']}/resume"), 409, "conflict")


async def test_unknown_runs_cannot_be_paused_or_resumed(client: httpx.AsyncClient) -> None:
    missing = str(uuid.uuid4())
    for path in ("/v1/workflow-runs", "/v1/workflows/runs"):
        for action in ("pause", "resume"):
            response = await client.post(f"{path}/{missing}/{action}", json={})
            assert_error(response, 404, "not_found")


async def test_a_run_paused_before_it_starts_starts_on_resume(
    database_url: str, tmp_path: Path
) -> None:
    settings = fast_settings(database_url, tmp_path, run_workers=False)
    async with app_client(settings) as (client, services):
        definition = await define(client, [{"key": "a", **NOOP}])
        queued = await start(client, definition["id"])
        created = await client.post(
            "/v1/workflow-runs", json={"workflow_definition_id": definition["id"]}
        )
        unqueued = created.json()["data"]
        await pause(client, queued["id"])
        await pause(client, unqueued["id"])
        started = await client.post(f"/v1/workflow-runs/{unqueued['id']}/start", json={})
        assert started.status_code == 202
        assert started.json()["data"]["status"] == "paused"

        async def start_items() -> list[str]:
            async with services.db.read() as session:
                rows = await session.scalars(
                    select(WorkItem.status).where(WorkItem.kind == "workflow.run.start")
                )
                return list(rows)

        worker = Worker(services.queue, services.handlers, concurrency=1, poll_interval=0.05)
        worker.start()
        try:
            # The queued run's start item comes up and does nothing while the run is paused.
            assert await eventually(start_items, lambda s: s == ["done"]) == ["done"]
            for run_id in (queued["id"], unqueued["id"]):
                held = await get_run(client, run_id)
                assert (held["status"], held["started_at"]) == ("paused", None)
                resumed = await resume(client, run_id)
                assert resumed["status"] == "pending"
                done = await wait_for_run(client, run_id)
                assert done["status"] == "completed"
        finally:
            await worker.stop()


async def test_a_ready_node_that_comes_up_while_paused_waits_for_resume(
    database_url: str, tmp_path: Path
) -> None:
    settings = fast_settings(database_url, tmp_path, run_workers=False)
    async with app_client(settings) as (client, services):
        definition = await define(client, [{"key": "a", **NOOP}, {"key": "b", **NOOP}])
        run = await start(client, definition["id"])
        worker = Worker(services.queue, services.handlers)
        for item in await services.queue.claim(worker.id, ["workflow.run.start"], 1):
            await services.handlers[item.kind].run(item)
        await pause(client, run["id"])

        # One node's item is claimed while the run is paused: it finishes without executing.
        (item,) = await services.queue.claim(worker.id, ["workflow.node"], 1)
        await services.handlers[item.kind].run(item)
        held = await get_run(client, run["id"])
        assert [n["status"] for n in held["nodes"]] == ["ready", "ready"]
        items = await node_items(services)
        claimed = next(key for key, statuses in items.items() if statuses == ["done"])
        other = "b" if claimed == "a" else "a"
        assert items[other] == ["queued"]

        # Resume queues the claimed node again; the other's item, still queued, is not doubled.
        await resume(client, run["id"])
        assert await node_items(services) == {claimed: ["done", "queued"], other: ["queued"]}
        worker.start()
        try:
            done = await wait_for_run(client, run["id"])
        finally:
            await worker.stop()
    assert done["status"] == "completed"
    assert [n["attempts"] for n in done["nodes"]] == [1, 1]


async def test_a_paused_run_stays_paused_across_a_restart(
    database_url: str, tmp_path: Path
) -> None:
    settings = fast_settings(database_url, tmp_path)
    async with app_client(settings) as (client, _):
        definition = await define(client, GATED)
        run = await start(client, definition["id"])
        await wait_for_run(client, run["id"], "waiting")
        await pause(client, run["id"])

    async with app_client(settings) as (client, _):
        released = await client.post(f"/v1/workflow-runs/{run['id']}/nodes/gate/resume", json={})
        assert released.json()["data"]["status"] == "paused"
        assert node(await get_run(client, run["id"]), "after")["status"] == "pending"
        await resume(client, run["id"])
        assert (await wait_for_run(client, run["id"]))["status"] == "completed"


async def test_pause_and_resume_are_audited(client: httpx.AsyncClient) -> None:
    definition = await define(client, GATED)
    run = await start(client, definition["id"])
    await wait_for_run(client, run["id"], "waiting")
    await pause(client, run["id"])
    await pause(client, run["id"])  # changes nothing, but it is a call made: recorded too
    await resume(client, run["id"])
    logs = await client.get(
        f"/v1/organizations/{run['organization_id']}/audit-logs", params={"limit": 4}
    )
    rows = logs.json()["data"]["items"]
    assert [(r["action"], r["resource_id"]) for r in rows[:3]] == [
        ("run.resume", run["id"]),
        ("run.pause", run["id"]),
        ("run.pause", run["id"]),
    ]
    assert rows[3]["action"] == "run.start"


async def test_a_scheduled_run_paused_while_held_starts_on_resume(settings: Settings) -> None:
    async with harness(settings, at("2026-01-01 00:00:30")) as h:
        wf = await h.definition(GATED)
        schedule = await h.create(wf, "* * * * *", concurrency_policy="queue")
        for minute in (1, 2):
            h.clock.set(at(f"2026-01-01 00:0{minute}"))
            assert await h.tick() == 1
        first, second = (entry["run_id"] for entry in await h.history(schedule["id"]))
        await wait_for_run(h.client, first, "waiting")
        await pause(h.client, second)

        await h.client.post(f"/v1/workflow-runs/{first}/nodes/gate/resume", json={})
        await wait_for_run(h.client, first)
        assert await h.tick() == 1  # its turn: queued, but it stays paused
        held = await get_run(h.client, second)
        assert (held["status"], held["started_at"]) == ("paused", None)
        assert (await resume(h.client, second))["status"] == "pending"
        await wait_for_run(h.client, second, "waiting")
