"""Approvals with a time limit: fail, approve or reject when nobody answered in time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
from fabric_server.testing import fast_settings

TIMEOUT_KIND = "workflow.node.timeout"


def gate(**config: Any) -> list[dict[str, Any]]:
    return [
        {"key": "gate", "operation": "workflow.approval", "config": config},
        {"key": "after", "operation": "workflow.noop", "depends_on": ["gate"]},
    ]


async def timeout_items(services: Services) -> list[str]:
    async with services.db.read() as session:
        rows = await session.scalars(select(WorkItem.status).where(WorkItem.kind == TIMEOUT_KIND))
        return list(rows)


async def test_an_approval_that_times_out_fails_by_default(client: httpx.AsyncClient) -> None:
    run = await run_workflow(client, gate(prompt="Ship it?", timeout_seconds=0.2))
    assert run["status"] == "failed"
    failed = node(run, "gate")
    assert failed["status"] == "failed"
    assert failed["error"] == "approval_timed_out: no decision within 0.2 s"
    assert run["error"] == "node gate failed: approval_timed_out: no decision within 0.2 s"
    assert node(run, "after")["status"] == "skipped"

    log = await run_log(client, run["id"])
    waiting = next(e for e in log["events"] if e["kind"] == "workflow.node.waiting")
    assert waiting["payload"]["prompt"] == "Ship it?"
    assert waiting["payload"]["timeout_at"]
    kinds = [(e["kind"], e["node_key"]) for e in log["events"]]
    assert kinds.index(("workflow.node.timed_out", "gate")) < kinds.index(
        ("workflow.node.failed", "gate")
    )
    timed_out = next(e for e in log["events"] if e["kind"] == "workflow.node.timed_out")
    assert timed_out["payload"] == {"timeout_seconds": 0.2}

    # The node is no longer waiting: a late answer is refused.
    late = await client.post(f"/v1/workflow-runs/{run['id']}/nodes/gate/resume", json={})
    assert_error(late, 409, "conflict")


async def test_an_approval_that_times_out_can_approve_with_default_data(
    client: httpx.AsyncClient,
) -> None:
    nodes = gate(timeout_seconds=0.2, on_timeout="approve", default_data={"note": "auto"})
    nodes[0]["outputs"] = {"approved": "$context.approved", "note": "$context.note"}
    run = await run_workflow(client, nodes)
    assert run["status"] == "completed"
    assert node(run, "gate")["output"] == {"note": "auto", "approved": True, "timed_out": True}
    assert run["context"] == {"approved": True, "note": "auto"}
    assert node(run, "after")["status"] == "completed"
    kinds = [k for k, _ in await event_kinds(client, run["id"])]
    assert kinds.index("workflow.node.timed_out") < kinds.index("workflow.run.resumed")


async def test_an_approval_that_times_out_can_reject(client: httpx.AsyncClient) -> None:
    run = await run_workflow(client, gate(timeout_seconds=0.2, on_timeout="reject"))
    assert run["status"] == "completed"
    assert node(run, "gate")["output"] == {"approved": False, "timed_out": True}
    assert run["context"]["gate"] == {"approved": False, "timed_out": True}


async def test_default_data_lacking_a_bound_field_fails_the_node(
    client: httpx.AsyncClient,
) -> None:
    nodes = gate(timeout_seconds=0.2, on_timeout="approve")
    nodes[0]["outputs"] = {"comment": "$context.comment"}
    run = await run_workflow(client, nodes)
    assert run["status"] == "failed"
    assert "comment" in node(run, "gate")["error"]


async def test_an_answer_before_the_timeout_wins(
    client: httpx.AsyncClient, services: Services
) -> None:
    definition = await define(client, gate(timeout_seconds=30, on_timeout="reject"))
    run = await start(client, definition["id"])
    await wait_for_run(client, run["id"], "waiting")
    assert await timeout_items(services) == ["queued"]
    resumed = await client.post(
        f"/v1/workflow-runs/{run['id']}/nodes/gate/resume", json={"approved": True}
    )
    assert resumed.status_code == 200
    done = await wait_for_run(client, run["id"])
    assert done["status"] == "completed"
    assert node(done, "gate")["output"] == {"approved": True}
    assert await timeout_items(services) == ["cancelled"]


async def test_a_timeout_that_comes_up_after_the_answer_does_nothing(
    database_url: str, tmp_path: Path
) -> None:
    settings = fast_settings(database_url, tmp_path, run_workers=False)
    async with app_client(settings) as (client, services):
        definition = await define(client, gate(timeout_seconds=0.2, on_timeout="reject"))
        run = await start(client, definition["id"])
        worker = Worker(services.queue, services.handlers)

        async def step(kind: str) -> list[WorkItem]:
            return await services.queue.claim(worker.id, [kind], 1)

        for kind in ("workflow.run.start", "workflow.node"):
            (item,) = await step(kind)
            await services.handlers[kind].run(item)
        assert (await get_run(client, run["id"]))["status"] == "waiting"

        # The time-out is claimed when due, and the answer arrives before it is handled.
        (timeout,) = await eventually(lambda: step(TIMEOUT_KIND), lambda items: len(items) == 1)
        answered = await client.post(
            f"/v1/workflow-runs/{run['id']}/nodes/gate/resume", json={"approved": True}
        )
        assert answered.status_code == 200
        await services.handlers[TIMEOUT_KIND].run(timeout)
        assert await timeout_items(services) == ["done"]
        held = await get_run(client, run["id"])
        assert node(held, "gate")["output"] == {"approved": True}
        assert "workflow.node.timed_out" not in [k for k, _ in await event_kinds(client, run["id"])]


async def test_a_timeout_applies_to_a_paused_run_without_dispatching(
    database_url: str, tmp_path: Path
) -> None:
    settings = fast_settings(database_url, tmp_path, run_workers=False)
    async with app_client(settings) as (client, services):
        definition = await define(client, gate(timeout_seconds=0.2, on_timeout="approve"))
        run = await start(client, definition["id"])
        worker = Worker(services.queue, services.handlers, poll_interval=0.05)
        for kind in ("workflow.run.start", "workflow.node"):
            (item,) = await services.queue.claim(worker.id, [kind], 1)
            await services.handlers[kind].run(item)
        paused = await client.post(f"/v1/workflow-runs/{run['id']}/pause", json={})
        assert paused.json()["data"]["status"] == "paused"

        worker.start()
        try:
            held = await eventually(
                lambda: get_run(client, run["id"]),
                lambda r: node(r, "gate")["status"] == "completed",
            )
            assert held["status"] == "paused"
            assert node(held, "after")["status"] == "pending"
            await client.post(f"/v1/workflow-runs/{run['id']}/resume")
            done = await wait_for_run(client, run["id"])
        finally:
            await worker.stop()
    assert done["status"] == "completed"


async def test_the_timeout_survives_a_restart(database_url: str, tmp_path: Path) -> None:
    settings = fast_settings(database_url, tmp_path)
    async with app_client(settings) as (client, _):
        definition = await define(client, gate(timeout_seconds=0.5))
        run = await start(client, definition["id"])
        await wait_for_run(client, run["id"], "waiting")
    async with app_client(settings) as (client, _):
        done = await wait_for_run(client, run["id"])
    assert done["status"] == "failed"
    assert node(done, "gate")["error"].startswith("approval_timed_out")


async def test_approval_timeout_config_is_checked_when_the_definition_is_saved(
    client: httpx.AsyncClient,
) -> None:
    cases = {
        "config.timeout_seconds must be a number": {"timeout_seconds": "soon"},
        "config.timeout_seconds must be above 0": {"timeout_seconds": 0},
        "config.on_timeout must be one of fail, approve, reject": {
            "timeout_seconds": 1,
            "on_timeout": "shrug",
        },
        "config.on_timeout needs config.timeout_seconds": {"on_timeout": "approve"},
        "config.default_data applies only when config.on_timeout is approve or reject": {
            "timeout_seconds": 1,
            "default_data": {"x": 1},
        },
        "config.default_data must be an object": {
            "timeout_seconds": 1,
            "on_timeout": "approve",
            "default_data": [1],
        },
    }
    for message, config in cases.items():
        body = {
            "name": "bad-gate",
            "nodes": [{"key": "gate", "type": "workflow.approval", "config": config}],
        }
        response = await client.post("/v1/workflow-definitions", json=body)
        # The config fits the published schema (an object): the operation's rules make it 422.
        error = assert_error(response, 422, "validation_failed")["error"]
        problems = error["details"]["errors"]
        assert [p["type"] for p in problems] == ["invalid_config"], problems
        assert problems[0]["message"].startswith(message), problems
