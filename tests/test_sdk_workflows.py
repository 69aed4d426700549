"""The SDK's workflow surface, as the product spec writes it, against a real server."""

from __future__ import annotations

import time
from typing import Any

import pytest

from fabric_platform import (
    AsyncFabricClient,
    FabricClient,
    FabricConflictError,
    FabricNotFoundError,
    FabricValidationError,
    FabricWaitTimeout,
)
from fabric_server.testing import LiveServer


def wait_status(fabric: FabricClient, run_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        run = dict(fabric.get_run(run_id))
        if run["status"] == status:
            return run
        assert time.monotonic() < deadline, run
        time.sleep(0.02)


def test_spec_workflows_snippet(server: LiveServer) -> None:
    fabric = FabricClient(base_url=server.base_url)

    # Register a workflow definition (the spec's `{...}` config filled in)
    wf_id = fabric.upsert_workflow(
        name="my-pipeline",
        nodes=[{"type": "ai_generate", "config": {"prompt_template": "About {{context.topic}}"}}],
        defaults={"timeout": 300},
    )
    assert isinstance(wf_id, str)

    # List and retrieve
    workflows = fabric.list_workflows()
    wf = fabric.get_workflow(wf_id)
    assert [w["id"] for w in workflows] == [wf_id]
    assert wf["name"] == "my-pipeline"

    # Start a run
    run_id = fabric.run_workflow(wf_id, context={"topic": "AI agents"}, priority=5)

    # Poll until complete (blocks)
    result = fabric.wait_for_run(run_id, poll_interval=0.05, timeout=60.0)
    assert result["status"] == "completed"

    # Or check manually
    run = fabric.get_run(run_id)
    print(run["status"])  # "pending", "running", "completed", "failed"
    assert run["priority"] == 5

    # Manage runs
    log = fabric.run_log(run_id)
    assert [n["status"] for n in log["nodes"]] == ["completed"]
    assert "About AI agents" in str(log["nodes"][0]["output"])
    children = fabric.list_children(run_id)
    assert children == []
    with pytest.raises(FabricConflictError):
        fabric.cancel_run(run_id)  # already finished
    fabric.close()


def test_approval_resume_cancel_and_bulk_cancel(server: LiveServer) -> None:
    with FabricClient(base_url=server.base_url) as fabric:
        wf_id = fabric.upsert_workflow(
            name="approve-then-title",
            nodes=[
                {"key": "approval_step", "operation": "workflow.approval"},
                {
                    "key": "title",
                    "operation": "text.transform_basic",
                    "depends_on": ["approval_step"],
                    "config": {"operation": "title"},
                    "inputs": {"text": "$context.topic"},
                    "outputs": {"text": "$context.title"},
                },
            ],
        )
        run_id = fabric.run_workflow(wf_id, context={"topic": "ai agents"})
        wait_status(fabric, run_id, "waiting")
        with pytest.raises(FabricNotFoundError):
            fabric.resume_node(run_id, "no_such_node", data={})
        with pytest.raises(FabricConflictError):
            fabric.resume_node(run_id, "title", data={})

        # Resume a paused node
        fabric.resume_node(run_id, "approval_step", data={"approved": True})
        done = fabric.wait_for_run(run_id, poll_interval=0.05, timeout=60)
        assert done["status"] == "completed"
        assert done["context"]["title"] == "Ai Agents"

        run_id_1 = fabric.run_workflow(wf_id, context={"topic": "one"})
        run_id_2 = fabric.run_workflow(wf_id, context={"topic": "two"})
        fabric.cancel_run(run_id_1)
        result = fabric.bulk_cancel_runs([run_id_1, run_id_2])
        assert result["cancelled"] == [run_id_2]
        assert [s["id"] for s in result["skipped"]] == [run_id_1]
        assert fabric.get_run(run_id_2)["status"] == "cancelled"
        kinds = [e["kind"] for e in fabric.stream_run_events(run_id_2)]
        assert kinds[0] == "workflow.run.created"
        assert kinds[-1] == "workflow.run.cancelled"


def test_pause_and_resume_a_run(server: LiveServer) -> None:
    with FabricClient(base_url=server.base_url) as fabric:
        wf_id = fabric.upsert_workflow(
            name="gate-then-title",
            nodes=[
                {"key": "gate", "operation": "workflow.approval"},
                {
                    "key": "title",
                    "operation": "text.transform_basic",
                    "depends_on": ["gate"],
                    "config": {"operation": "title"},
                    "inputs": {"text": "$context.topic"},
                    "outputs": {"text": "$context.title"},
                },
            ],
        )
        run_id = fabric.run_workflow(wf_id, context={"topic": "paused runs"})
        wait_status(fabric, run_id, "waiting")
        assert fabric.pause_run(run_id, reason="lunch")["status"] == "paused"
        assert fabric.pause_run(run_id)["status"] == "paused"  # again: no change

        # The answer is recorded, but the run dispatches nothing while paused.
        fabric.resume_node(run_id, "gate", data={"approved": True})
        held = fabric.get_run(run_id)
        assert held["status"] == "paused"
        assert [n["status"] for n in held["nodes"]] == ["completed", "pending"]

        assert fabric.resume_run(run_id)["status"] == "running"
        done = fabric.wait_for_run(run_id, poll_interval=0.05, timeout=60)
        assert done["context"]["title"] == "Paused Runs"
        kinds = [e["kind"] for e in fabric.stream_run_events(run_id)]
        assert kinds.index("workflow.run.paused") < kinds.index("workflow.run.resumed")
        with pytest.raises(FabricConflictError):
            fabric.pause_run(run_id)  # already finished


async def test_async_approval_timeout_and_run_controls(server: LiveServer) -> None:
    async with AsyncFabricClient(base_url=server.base_url) as fabric:
        wf_id = await fabric.upsert_workflow(
            name="auto-reject",
            nodes=[
                {
                    "key": "gate",
                    "operation": "workflow.approval",
                    "config": {"timeout_seconds": 0.2, "on_timeout": "reject"},
                    "outputs": {"approved": "$context.approved"},
                }
            ],
        )
        run_id = await fabric.run_workflow(wf_id)
        run = await fabric.wait_for_run(run_id, poll_interval=0.05, timeout=60)
        assert run["status"] == "completed"
        assert run["context"] == {"approved": False}
        with pytest.raises(FabricConflictError):
            await fabric.resume_node(run_id, "gate", data={"approved": True})
        with pytest.raises(FabricConflictError):
            await fabric.resume_run(run_id)
        with pytest.raises(FabricNotFoundError):
            await fabric.pause_run("00000000-0000-0000-0000-000000000000")


def test_invalid_definitions_and_wait_timeout(server: LiveServer) -> None:
    with FabricClient(base_url=server.base_url) as fabric:
        with pytest.raises(FabricValidationError) as invalid:
            fabric.upsert_workflow(
                name="cyclic",
                nodes=[
                    {"key": "a", "operation": "workflow.noop", "depends_on": ["b"]},
                    {"key": "b", "operation": "workflow.noop", "depends_on": ["a"]},
                ],
            )
        assert invalid.value.code == "validation_failed"
        wf_id = fabric.upsert_workflow(
            name="waits", nodes=[{"key": "gate", "operation": "workflow.approval"}]
        )
        run_id = fabric.run_workflow(wf_id)
        with pytest.raises(TimeoutError):
            fabric.wait_for_run(run_id, poll_interval=0.05, timeout=0.3)
        with pytest.raises(FabricWaitTimeout):
            fabric.wait_for_run(run_id, poll_interval=0.05, timeout=0.1)


async def test_async_workflow_twin(server: LiveServer) -> None:
    async with AsyncFabricClient(base_url=server.base_url) as fabric:
        wf_id = await fabric.upsert_workflow(
            name="async-pipeline",
            nodes=[{"key": "echo", "operation": "ai.generate", "inputs": {"prompt": "$context.q"}}],
        )
        run_id = await fabric.run_workflow(wf_id, context={"q": "hello"})
        kinds = [e["kind"] async for e in fabric.stream_run_events(run_id)]
        assert kinds[-1] == "workflow.run.completed"
        run = await fabric.get_run(run_id)
        assert run["status"] == "completed"
