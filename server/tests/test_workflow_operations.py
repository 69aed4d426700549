"""Each workflow operation, run end to end over HTTP through the real workers."""

from __future__ import annotations

import datetime as dt

import httpx
from server_helpers import assert_error, eventually
from sqlalchemy import select
from workflow_helpers import (
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
from fabric_server.services import Services
from fabric_server.usage.models import UsageRecord


async def test_ai_generate_renders_templates_and_records_usage(
    client: httpx.AsyncClient, services: Services
) -> None:
    nodes = [
        {
            "key": "outline",
            "type": "ai_generate",
            "config": {"prompt_template": "Outline {{context.topic}} in {{context.n}} points"},
        },
        {
            "key": "expand",
            "operation": "ai.generate",
            "depends_on": ["outline"],
            "config": {"model": "echo-1", "tier": "basic"},
            "inputs": {"prompt": "$context.outline.content"},
            "outputs": [{"name": "content", "path": "$context.article.body"}],
        },
    ]
    run = await run_workflow(client, nodes, {"topic": "bees", "n": 3})
    assert run["status"] == "completed", run
    outline = node(run, "outline")["output"]
    assert outline["content"] == "Outline bees in 3 points"
    assert outline["finish_reason"] == "stop"
    assert outline["provider_id"] == "echo"
    assert outline["usage"] == {"input_tokens": 5, "output_tokens": 5, "estimated_cost_usd": 0.0}
    assert run["context"]["outline"] == outline  # no outputs: stored under the node key
    assert run["context"]["article"] == {"body": "Outline bees in 3 points"}
    assert "expand" not in run["context"]
    assert node(run, "expand")["input"] == {"prompt": "Outline bees in 3 points"}

    async with services.db.read() as session:
        rows = list(
            await session.scalars(
                select(UsageRecord).where(UsageRecord.run_id == run["id"]).order_by(UsageRecord.id)
            )
        )
    assert [(r.node_key, r.provider_id, r.model, r.input_tokens) for r in rows] == [
        ("outline", "echo", "echo-1", 5),
        ("expand", "echo", "echo-1", 5),
    ]
    assert all(r.organization_id == run["organization_id"] for r in rows)
    assert all(r.job_id is None for r in rows)


async def test_ai_generate_provider_refusal_is_a_node_error(client: httpx.AsyncClient) -> None:
    nodes = [
        {
            "key": "gen",
            "operation": "ai.generate",
            "config": {"prompt_template": "x", "params": {"fail": "upstream said no"}},
        }
    ]
    run = await run_workflow(client, nodes)
    assert run["status"] == "failed"
    assert node(run, "gen")["error"] == "upstream said no"
    assert node(run, "gen")["attempts"] == 1


async def test_merge_validate_and_noop(client: httpx.AsyncClient) -> None:
    schema = {
        "type": "object",
        "required": ["user", "limits"],
        "properties": {"limits": {"type": "object", "properties": {"max": {"type": "integer"}}}},
    }
    nodes = [
        {
            "key": "merge",
            "operation": "workflow.merge_context",
            "config": {"values": {"limits": {"max": 5}, "mode": "strict"}},
        },
        {
            "key": "check",
            "operation": "workflow.validate_context",
            "depends_on": ["merge"],
            "config": {"schema": schema},
        },
        {
            "key": "pass",
            "operation": "workflow.noop",
            "depends_on": ["check"],
            "inputs": {"who": "$context.user.name", "absent": "$context.nothing.here"},
        },
    ]
    run = await run_workflow(client, nodes, {"user": {"name": "ada"}, "limits": {"min": 1}})
    assert run["status"] == "completed", run
    assert run["context"] == {
        "user": {"name": "ada"},
        "limits": {"min": 1, "max": 5},
        "mode": "strict",
    }
    assert node(run, "check")["output"] == {"valid": True}
    assert node(run, "pass")["output"] == {"who": "ada"}
    assert run["output"] == {"pass": {"who": "ada"}}


async def test_validate_context_lists_every_violation(client: httpx.AsyncClient) -> None:
    schema = {
        "type": "object",
        "required": ["email"],
        "properties": {"age": {"type": "integer", "minimum": 0}},
    }
    nodes = [
        {"key": "check", "operation": "workflow.validate_context", "config": {"schema": schema}}
    ]
    run = await run_workflow(client, nodes, {"age": -3})
    assert run["status"] == "failed"
    error = node(run, "check")["error"]
    assert error.startswith("context does not match the schema")
    assert "age: -3 is less than the minimum of 0" in error
    assert "(root): 'email' is a required property" in error


async def test_text_transforms(client: httpx.AsyncClient) -> None:
    def transform(key: str, op: str, text_path: str | None = "$context.text", **config: object):
        inputs = {"text": text_path} if text_path else {}
        return {
            "key": key,
            "operation": "text.transform_basic",
            "config": {"operation": op, **config},
            "inputs": inputs,
        }

    nodes = [
        transform("upper", "upper"),
        transform("lower", "lower"),
        transform("trim", "trim"),
        transform("title", "title", "$context.trim.text"),
        transform("replace", "replace", old="bees", new="wasps"),
        transform("truncate", "truncate", length=6),
        transform("split", "split", "$context.csv", separator=","),
        {
            "key": "join",
            "operation": "text.transform_basic",
            "depends_on": ["split"],
            "config": {"operation": "join", "separator": " + "},
            "inputs": {"items": "$context.split.items"},
        },
        transform("card", "template", None, template="{{context.title.text}}!"),
    ]
    nodes[3]["depends_on"] = ["trim"]
    nodes[-1]["depends_on"] = ["title"]
    run = await run_workflow(client, nodes, {"text": "  busy bees  ", "csv": "a,b,c"})
    assert run["status"] == "completed", run
    outputs = {n["node_key"]: n["output"] for n in run["nodes"]}
    assert outputs == {
        "upper": {"text": "  BUSY BEES  "},
        "lower": {"text": "  busy bees  "},
        "trim": {"text": "busy bees"},
        "title": {"text": "Busy Bees"},
        "replace": {"text": "  busy wasps  "},
        "truncate": {"text": "  busy"},
        "split": {"items": ["a", "b", "c"], "count": 3},
        "join": {"text": "a + b + c"},
        "card": {"text": "Busy Bees!"},
    }


async def test_templates_read_earlier_nodes_and_fail_on_missing_values(
    client: httpx.AsyncClient,
) -> None:
    nodes = [
        {"key": "shout", "operation": "text.transform_basic", "config": {"operation": "upper"},
         "inputs": {"text": "$context.name"}},
        {"key": "pause", "operation": "workflow.noop", "depends_on": ["shout"]},
        {"key": "card", "operation": "text.transform_basic", "depends_on": ["pause"],
         "config": {"operation": "template", "template": "Hi {{nodes.shout.text}}"},
         "outputs": {"text": "$context.card"}},
        {"key": "ask", "operation": "workflow.approval", "depends_on": ["card"],
         "config": {"prompt": "Send {{context.card}} to {{context.team}}?"}},
    ]  # fmt: skip
    run = await run_workflow(client, nodes, {"name": "ada"})
    assert run["status"] == "failed"
    assert node(run, "card")["output"] == {"text": "Hi ADA"}  # through `pause`, not direct
    assert node(run, "ask")["error"] == (
        "config.prompt: template variable `context.team` has no value"
    )


async def test_transform_of_a_missing_input_fails_clearly(client: httpx.AsyncClient) -> None:
    nodes = [
        {
            "key": "up",
            "operation": "text.transform_basic",
            "config": {"operation": "upper"},
            "inputs": {"text": "$context.missing"},
        }
    ]
    run = await run_workflow(client, nodes)
    assert run["status"] == "failed"
    assert node(run, "up")["error"] == "input `text` is not set"


async def test_delay_is_a_future_work_item_not_a_busy_worker(
    client: httpx.AsyncClient, services: Services
) -> None:
    definition = await define(
        client,
        [
            {"key": "wait", "operation": "workflow.delay", "config": {"seconds": 1}},
            {"key": "after", "operation": "workflow.noop", "depends_on": ["wait"]},
        ],
    )
    run = await start(client, definition["id"])
    sleeping = await eventually(
        lambda: get_run(client, run["id"]), lambda r: node(r, "wait")["status"] == "running"
    )

    async def node_items() -> list[WorkItem]:
        async with services.db.read() as session:
            rows = await session.scalars(
                select(WorkItem).where(
                    WorkItem.kind == "workflow.node", WorkItem.status.in_(("queued", "running"))
                )
            )
            return list(rows)

    # While it sleeps, nothing holds a worker: one queued item is due in the future.
    (item,) = await eventually(node_items, lambda items: [i.status for i in items] == ["queued"])
    assert item.available_at > dt.datetime.now(dt.UTC)
    done = await wait_for_run(client, run["id"])
    assert done["status"] == "completed"
    assert node(done, "wait")["output"] == {"waited_seconds": 1.0}
    assert done["completed_at"] >= sleeping["started_at"]
    started = dt.datetime.fromisoformat(node(done, "wait")["started_at"])
    finished = dt.datetime.fromisoformat(node(done, "wait")["completed_at"])
    assert (finished - started).total_seconds() >= 1.0


async def test_approval_waits_for_resume(client: httpx.AsyncClient) -> None:
    definition = await define(
        client,
        [
            {
                "key": "draft",
                "operation": "text.transform_basic",
                "config": {"operation": "template", "template": "post about {{context.topic}}"},
            },
            {
                "key": "approval_step",
                "operation": "workflow.approval",
                "depends_on": ["draft"],
                "config": {"prompt": "Publish '{{context.draft.text}}'?"},
                "outputs": {"approved": "$context.review.approved"},
            },
            {
                "key": "publish",
                "operation": "workflow.noop",
                "depends_on": ["approval_step"],
                "inputs": {"approved": "$context.review.approved"},
            },
        ],
    )
    run = await start(client, definition["id"], {"topic": "bees"})
    waiting = await wait_for_run(client, run["id"], "waiting")
    assert node(waiting, "approval_step")["status"] == "waiting"
    assert node(waiting, "publish")["status"] == "pending"
    assert waiting["progress"]["current_task"] == "approval_step"
    log = await run_log(client, run["id"])
    asked = next(e for e in log["events"] if e["kind"] == "workflow.run.waiting")
    assert asked["node_key"] == "approval_step"
    assert asked["payload"] == {"prompt": "Publish 'post about bees'?"}

    resumed = await client.post(
        f"/v1/workflow-runs/{run['id']}/nodes/approval_step/resume",
        json={"approved": True, "note": "ship it"},
    )
    assert resumed.status_code == 200
    assert resumed.json()["data"]["status"] in ("running", "completed")
    done = await wait_for_run(client, run["id"])
    assert done["status"] == "completed"
    assert node(done, "approval_step")["output"] == {"approved": True, "note": "ship it"}
    assert done["context"]["review"] == {"approved": True}
    assert node(done, "publish")["output"] == {"approved": True}
    kinds = [k for k, _ in await event_kinds(client, run["id"])]
    assert kinds.index("workflow.run.waiting") < kinds.index("workflow.run.resumed")
    assert kinds[-1] == "workflow.run.completed"


async def test_resume_data_lacking_a_bound_field_is_rejected(client: httpx.AsyncClient) -> None:
    definition = await define(
        client,
        [
            {
                "key": "ask",
                "operation": "workflow.wait_for_input",
                "outputs": {"approved": "$context.approved"},
            }
        ],
    )
    run = await start(client, definition["id"])
    await wait_for_run(client, run["id"], "waiting")
    path = f"/v1/workflow-runs/{run['id']}/nodes/ask/resume"
    assert_error(await client.post(path, json={"nope": 1}), 400, "validation_failed")
    assert (await get_run(client, run["id"]))["status"] == "waiting"
    assert (await client.post(path, json={"approved": False})).status_code == 200
    done = await wait_for_run(client, run["id"])
    assert done["context"] == {"approved": False}


async def test_resume_without_outputs_merges_under_the_node_key(
    client: httpx.AsyncClient,
) -> None:
    definition = await define(client, [{"key": "ask", "operation": "workflow.approval"}])
    run = await start(client, definition["id"], {"x": 1})
    await wait_for_run(client, run["id"], "waiting")
    await client.post(f"/v1/workflow-runs/{run['id']}/nodes/ask/resume", json={"ok": "yes"})
    done = await wait_for_run(client, run["id"])
    assert done["context"] == {"x": 1, "ask": {"ok": "yes"}}
    assert done["output"] == {"ask": {"ok": "yes"}}
