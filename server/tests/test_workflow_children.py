"""Child runs: sub-workflows, fan-out/fan-in, failure and cancellation across the tree."""

from __future__ import annotations

from typing import Any

import httpx
from server_helpers import eventually
from workflow_helpers import define, get_run, node, run_workflow, start, wait_for_run

SHOUT = [
    {
        "key": "shout",
        "operation": "text.transform_basic",
        "config": {"operation": "upper"},
        "inputs": {"text": "$context.item"},
        "outputs": {"text": "$context.loud"},
    },
]


async def children_of(client: httpx.AsyncClient, run_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/workflow-runs/{run_id}/children")
    assert response.status_code == 200, response.text
    children: list[dict[str, Any]] = response.json()["data"]
    return children


async def test_subworkflow_runs_a_child_and_takes_its_result(client: httpx.AsyncClient) -> None:
    child = await define(client, SHOUT, name="shouter")
    nodes = [
        {
            "key": "by_name",
            "operation": "workflow.subworkflow",
            "config": {"workflow_name": "shouter"},
            "inputs": {"item": "$context.word"},
        },
        {
            "key": "by_id",
            "operation": "workflow.subworkflow",
            "depends_on": ["by_name"],
            "config": {"workflow_definition_id": child["id"]},
            "inputs": {"item": "$context.by_name.context.loud"},
            "outputs": {"context": "$context.second"},
        },
    ]
    run = await run_workflow(client, nodes, {"word": "hey"})
    assert run["status"] == "completed", run
    first = node(run, "by_name")["output"]
    assert first["status"] == "completed"
    assert first["context"] == {"item": "hey", "loud": "HEY"}
    assert first["output"] == {"shout": {"text": "HEY"}}
    assert run["context"]["second"] == {"item": "HEY", "loud": "HEY"}

    children = await children_of(client, run["id"])
    assert [c["id"] for c in children] == [first["run_id"], node(run, "by_id")["output"]["run_id"]]
    for child_run in children:
        assert child_run["parent_run_id"] == run["id"]
        assert child_run["workflow_definition_id"] == child["id"]
        assert child_run["status"] == "completed"
    assert [c["parent_node_key"] for c in children] == ["by_name", "by_id"]
    assert await children_of(client, children[0]["id"]) == []


async def test_a_failed_child_fails_the_parent_node(client: httpx.AsyncClient) -> None:
    await define(
        client,
        [
            {
                "key": "check",
                "operation": "workflow.validate_context",
                "config": {"schema": {"required": ["must"]}},
            }
        ],
        name="strict",
    )
    nodes = [
        {"key": "sub", "operation": "workflow.subworkflow", "config": {"workflow_name": "strict"}},
        {"key": "after", "operation": "workflow.noop", "depends_on": ["sub"]},
    ]
    run = await run_workflow(client, nodes)
    assert run["status"] == "failed"
    (child,) = await children_of(client, run["id"])
    assert child["status"] == "failed"
    error = node(run, "sub")["error"]
    assert error.startswith(f"the sub-workflow (run {child['id']}) failed: node check failed")
    assert node(run, "after")["status"] == "skipped"


async def test_unknown_subworkflow_fails_the_node(client: httpx.AsyncClient) -> None:
    nodes = [
        {"key": "sub", "operation": "workflow.subworkflow", "config": {"workflow_name": "nobody"}}
    ]
    run = await run_workflow(client, nodes)
    assert run["status"] == "failed"
    assert node(run, "sub")["error"] == "workflow definition 'nobody' was not found"


async def test_fan_out_then_fan_in(client: httpx.AsyncClient) -> None:
    await define(client, SHOUT, name="process-segment")
    nodes = [
        {
            "key": "split",
            "operation": "text.transform_basic",
            "config": {"operation": "split", "separator": " "},
            "inputs": {"text": "$context.text"},
        },
        {
            "key": "branches",
            "kind": "workflow_fan_out",
            "depends_on": ["split"],
            "config": {"branch_kind": "process-segment"},
            "inputs": [{"name": "items", "path": "$context.split.items"}],
        },
        {
            "key": "empty",
            "operation": "workflow.fan_out",
            "config": {"workflow_name": "process-segment"},
            "inputs": {"items": "$context.none"},
        },
        {"key": "gather", "operation": "workflow.fan_in", "depends_on": ["branches"]},
        {
            "key": "merge",
            "operation": "workflow.fan_in",
            "config": {"mode": "merge"},
            "inputs": {"a": "$context.left", "b": "$context.right"},
        },
    ]
    context = {"text": "one two three", "none": [], "left": {"x": 1}, "right": {"y": 2}}
    run = await run_workflow(client, nodes, context)
    assert run["status"] == "completed", run
    out = node(run, "branches")["output"]
    assert out["items"] == ["one", "two", "three"]
    assert out["count"] == 3
    assert out["results"] == [{"shout": {"text": w}} for w in ("ONE", "TWO", "THREE")]
    assert node(run, "empty")["output"] == {"items": [], "results": [], "count": 0, "run_ids": []}
    gathered = node(run, "gather")["output"]
    assert gathered["count"] == 3
    assert gathered["items"] == out["results"]
    assert node(run, "merge")["output"] == {"merged": {"x": 1, "y": 2}}

    children = await children_of(client, run["id"])
    assert [c["id"] for c in children] == out["run_ids"]
    assert [c["context"] for c in children] == [
        {"item": "one", "index": 0, "loud": "ONE"},
        {"item": "two", "index": 1, "loud": "TWO"},
        {"item": "three", "index": 2, "loud": "THREE"},
    ]


async def test_fan_out_needs_a_list(client: httpx.AsyncClient) -> None:
    await define(client, SHOUT, name="process-segment")
    nodes = [
        {
            "key": "fan",
            "operation": "workflow.fan_out",
            "config": {"branch_kind": "process-segment"},
            "inputs": {"items": "$context.text"},
        }
    ]
    run = await run_workflow(client, nodes, {"text": "not a list"})
    assert run["status"] == "failed"
    assert node(run, "fan")["error"] == "input `items` must be a list"


async def test_cancelling_a_parent_cancels_its_children(client: httpx.AsyncClient) -> None:
    await define(client, [{"key": "ask", "operation": "workflow.approval"}], name="asker")
    definition = await define(
        client,
        [
            {
                "key": "fan",
                "operation": "workflow.fan_out",
                "config": {"workflow_name": "asker"},
                "inputs": {"items": "$context.items"},
            }
        ],
    )
    run = await start(client, definition["id"], {"items": [1, 2]})

    async def waiting_children() -> list[dict[str, Any]]:
        return await children_of(client, run["id"])

    children = await eventually(
        waiting_children, lambda cs: len(cs) == 2 and all(c["status"] == "waiting" for c in cs)
    )
    # A waiting child does not make the parent wait: only its own approvals do.
    assert (await get_run(client, run["id"]))["status"] == "running"
    assert (await client.post(f"/v1/workflow-runs/{run['id']}/cancel")).status_code == 200
    for child in children:
        cancelled = await wait_for_run(client, child["id"])
        assert cancelled["status"] == "cancelled"
        assert node(cancelled, "ask")["status"] == "skipped"


async def test_resuming_a_child_finishes_the_parent(client: httpx.AsyncClient) -> None:
    await define(
        client,
        [{"key": "ask", "operation": "workflow.approval", "outputs": {"ok": "$context.ok"}}],
        name="asker",
    )
    definition = await define(
        client,
        [{"key": "sub", "operation": "workflow.subworkflow", "config": {"workflow_name": "asker"}}],
    )
    run = await start(client, definition["id"])
    (child,) = await eventually(
        lambda: children_of(client, run["id"]),
        lambda cs: len(cs) == 1 and cs[0]["status"] == "waiting",
    )
    resumed = await client.post(
        f"/v1/workflow-runs/{child['id']}/nodes/ask/resume", json={"ok": True}
    )
    assert resumed.status_code == 200
    done = await wait_for_run(client, run["id"])
    assert done["status"] == "completed"
    assert node(done, "sub")["output"]["context"] == {"ok": True}
