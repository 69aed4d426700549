"""Run event streams over a real HTTP server: replay, live, resume, close on the end."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from server_helpers import eventually
from workflow_helpers import define, get_run, run_workflow, start, wait_for_run

from fabric_server.testing import LiveServer


async def read_run_stream(
    api: httpx.AsyncClient, run_id: str, headers: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Every event frame until the server closes the stream."""
    frames: list[dict[str, Any]] = []
    timeout = httpx.Timeout(10, read=30)
    path = f"/v1/workflow-runs/{run_id}/events"
    async with api.stream("GET", path, headers=headers, timeout=timeout) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        fields: dict[str, str] = {}
        async for line in response.aiter_lines():
            if not line:
                if "data" in fields:
                    event = json.loads(fields["data"])
                    assert event["id"] == fields["id"]
                    assert event["kind"] == fields["event"]
                    frames.append(event)
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = value
    return frames


async def test_a_finished_run_replays_and_closes(live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=10) as api:
        nodes = [{"key": "a", "operation": "workflow.noop"}]
        run = await run_workflow(api, nodes)
        events = await read_run_stream(api, run["id"])
        again = await read_run_stream(api, run["id"], {"Last-Event-ID": events[2]["id"]})
    assert [e["kind"] for e in events] == [
        "workflow.run.created",
        "workflow.run.queued",
        "workflow.run.started",
        "workflow.node.ready",
        "workflow.node.started",
        "workflow.node.completed",
        "workflow.run.completed",
    ]
    assert all(e["run_id"] == run["id"] for e in events)
    assert events[-1]["payload"]["output"] == {"a": {}}
    assert again == events[3:]


async def test_a_live_stream_follows_the_run_to_its_end(live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=10) as api:
        definition = await define(
            api,
            [
                {"key": "ask", "operation": "workflow.approval"},
                {"key": "after", "operation": "workflow.noop", "depends_on": ["ask"]},
            ],
        )
        run = await start(api, definition["id"])
        stream = asyncio.create_task(read_run_stream(api, run["id"]))
        await wait_for_run(api, run["id"], "waiting")
        assert not stream.done()
        await api.post(f"/v1/workflow-runs/{run['id']}/nodes/ask/resume", json={"ok": 1})
        events = await asyncio.wait_for(stream, 20)
    kinds = [e["kind"] for e in events]
    assert kinds[-4:] == [
        "workflow.node.ready",
        "workflow.node.started",
        "workflow.node.completed",
        "workflow.run.completed",
    ]
    assert kinds.index("workflow.run.waiting") < kinds.index("workflow.run.resumed")
    completed = [e for e in events if e["kind"] == "workflow.node.completed"]
    assert completed[0]["node_key"] == "ask"
    assert completed[0]["payload"]["output"] == {"ok": 1}


async def test_a_cancelled_run_stream_closes(live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=10) as api:
        definition = await define(api, [{"key": "ask", "operation": "workflow.approval"}])
        run = await start(api, definition["id"])
        await eventually(lambda: get_run(api, run["id"]), lambda r: r["status"] == "waiting")
        stream = asyncio.create_task(read_run_stream(api, run["id"]))
        await api.post(f"/v1/workflow-runs/{run['id']}/cancel")
        events = await asyncio.wait_for(stream, 20)
    assert [e["kind"] for e in events][-2:] == ["workflow.node.skipped", "workflow.run.cancelled"]
