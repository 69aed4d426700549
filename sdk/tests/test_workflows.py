"""Workflow definitions and runs (wire-spec §9.4, §9.5, §9.14): paths, bodies, return values."""

from __future__ import annotations

import json
from typing import Any, Callable

import httpx
import pytest

from fabric_platform import (
    AsyncFabricClient,
    FabricClient,
    FabricConflictError,
    FabricError,
    FabricTimeoutError,
    FabricWaitTimeout,
)

from .helpers import Script, fail, ok, sse_frame, sse_response
from .test_auth import Clock

MakeClient = Callable[..., FabricClient]
MakeAsyncClient = Callable[..., AsyncFabricClient]
DEFAULT_ORG = "00000000-0000-0000-0000-000000000010"
NODES = [{"type": "ai_generate", "config": {"prompt_template": "{{context.topic}}"}}]


def body(request: httpx.Request) -> Any:
    return json.loads(request.content) if request.content else None


def run(status: str, run_id: str = "run-1") -> dict[str, Any]:
    return {"id": run_id, "workflow_definition_id": "wf-1", "status": status}


def test_upsert_workflow_as_in_the_spec(make_client: MakeClient) -> None:
    script = Script(ok({"id": "wf-1", "name": "my-pipeline"}, status=201))
    client = make_client(script)

    wf_id = client.upsert_workflow(name="my-pipeline", nodes=NODES, defaults={"timeout": 300})

    assert wf_id == "wf-1"
    assert (script.last.method, script.last.url.path) == ("POST", "/v1/workflow-definitions")
    assert body(script.last) == {
        "name": "my-pipeline",
        "organization_id": DEFAULT_ORG,
        "nodes": NODES,
        "defaults": {"timeout": 300},
    }


def test_upsert_workflow_options(make_client: MakeClient) -> None:
    script = Script(ok({"id": "wf-1"}))
    client = make_client(script, organization_id="org-default")

    client.upsert_workflow("p", NODES, {}, description="does p", organization_id="org-x")
    client.upsert_workflow("p", NODES)

    first, second = (body(r) for r in script.requests)
    assert first == {
        "name": "p",
        "organization_id": "org-x",
        "nodes": NODES,
        "description": "does p",
    }
    assert second == {"name": "p", "organization_id": "org-default", "nodes": NODES}


def test_upsert_workflow_without_an_id_in_the_answer(make_client: MakeClient) -> None:
    client = make_client(Script(ok({"name": "p"})))

    with pytest.raises(FabricError, match="no id"):
        client.upsert_workflow("p", NODES)


def test_list_and_get_workflows(make_client: MakeClient) -> None:
    script = Script(ok([{"id": "wf-1"}]), ok([]), ok({"id": "wf/2"}))
    client = make_client(script)

    assert client.list_workflows() == [{"id": "wf-1"}]
    assert client.list_workflows(organization_id="org-1") == []
    assert client.get_workflow("wf/2") == {"id": "wf/2"}

    first, second, third = script.requests
    assert (first.url.path, first.url.query) == ("/v1/workflow-definitions", b"")
    assert dict(second.url.params) == {"organization_id": "org-1"}
    assert third.url.raw_path == b"/v1/workflow-definitions/wf%2F2"


def test_run_workflow_creates_then_starts(make_client: MakeClient) -> None:
    script = Script(ok(run("pending"), status=201), httpx.Response(202, json={"data": None}))
    client = make_client(script)

    run_id = client.run_workflow("wf-1", context={"topic": "AI agents"}, priority=5)

    assert run_id == "run-1"
    create, start = script.requests
    assert (create.method, create.url.path) == ("POST", "/v1/workflow-runs")
    assert body(create) == {
        "workflow_definition_id": "wf-1",
        "context": {"topic": "AI agents"},
        "priority": 5,
    }
    assert "Idempotency-Key" not in create.headers
    assert (start.method, start.url.path) == ("POST", "/v1/workflow-runs/run-1/start")
    assert body(start) == {"priority": 5}


def test_run_workflow_defaults_send_empty_objects(make_client: MakeClient) -> None:
    script = Script(ok(run("pending")), httpx.Response(202))
    client = make_client(script)

    client.run_workflow("wf-1")

    create, start = script.requests
    assert body(create) == {"workflow_definition_id": "wf-1", "context": {}}
    assert start.content == b"{}"


def test_run_workflow_with_an_idempotency_key_is_retried(
    make_client: MakeClient, sleeps: list[float]
) -> None:
    answers = [fail(503, "unavailable"), ok(run("pending"), status=201), httpx.Response(202)]
    script = Script(*answers)
    client = make_client(script)

    run_id = client.run_workflow("wf-1", metadata={"who": "ci"}, idempotency_key="key-1")

    assert run_id == "run-1"
    first, second, _start = script.requests
    assert (
        body(first)
        == body(second)
        == {
            "workflow_definition_id": "wf-1",
            "context": {},
            "metadata": {"who": "ci"},
            "idempotency_key": "key-1",
        }
    )
    assert first.headers["Idempotency-Key"] == "key-1"
    assert len(sleeps) == 1


def test_run_workflow_replayed_by_its_key_is_not_started_again(make_client: MakeClient) -> None:
    script = Script(ok(run("running")))
    client = make_client(script)

    assert client.run_workflow("wf-1", idempotency_key="key-1") == "run-1"
    assert len(script.requests) == 1


def test_run_workflow_tolerates_a_conflicting_start_only_with_a_key(
    make_client: MakeClient,
) -> None:
    conflict = fail(409, "conflict", "run already started")
    keyed = make_client(Script(ok(run("pending")), conflict))
    assert keyed.run_workflow("wf-1", idempotency_key="key-1") == "run-1"

    plain = make_client(Script(ok(run("pending")), conflict))
    with pytest.raises(FabricConflictError):
        plain.run_workflow("wf-1")


def test_wait_for_run_polls_until_a_terminal_status(
    make_client: MakeClient, sleeps: list[float]
) -> None:
    script = Script(ok(run("pending")), ok(run("running")), ok(run("completed")))
    client = make_client(script)

    result = client.wait_for_run("run-1", poll_interval=2.0)

    assert result["status"] == "completed"
    assert [r.url.path for r in script.requests] == ["/v1/workflow-runs/run-1"] * 3
    assert sleeps == [2.0, 2.0]


@pytest.mark.parametrize("status", ["failed", "cancelled"])
def test_wait_for_run_returns_failed_and_cancelled_runs(
    make_client: MakeClient, status: str
) -> None:
    client = make_client(Script(ok(run(status))))

    assert client.wait_for_run("run-1")["status"] == status


def test_wait_for_run_times_out(make_client: MakeClient) -> None:
    clock = Clock()
    client = make_client(Script(ok(run("running"))))
    client._clock = clock

    def sleep(seconds: float) -> None:
        clock.now += seconds

    client._sleep = sleep

    with pytest.raises(FabricWaitTimeout) as info:
        client.wait_for_run("run-1", poll_interval=4.0, timeout=10.0)

    assert isinstance(info.value, TimeoutError)
    assert isinstance(info.value, FabricTimeoutError)
    assert (info.value.run_id, info.value.last_status) == ("run-1", "running")
    assert clock.now == 1_000_010.0  # slept 4 + 4 + 2, never past the deadline


def test_wait_for_run_rejects_a_bad_poll_interval(make_client: MakeClient) -> None:
    client = make_client(Script(ok(run("running"))))

    with pytest.raises(ValueError, match="poll_interval"):
        client.wait_for_run("run-1", poll_interval=0)


def test_run_management_paths_and_bodies(make_client: MakeClient) -> None:
    script = Script(
        ok(run("running")),
        ok(run("cancelled")),
        ok({"cancelled": ["r1"], "skipped": [{"id": "r2", "reason": "completed"}]}),
        ok({"run_id": "run-1", "events": [], "nodes": []}),
        ok([run("running", "child-1")]),
    )
    client = make_client(script)

    assert client.get_run("run-1")["status"] == "running"
    assert client.cancel_run("run-1")["status"] == "cancelled"
    assert client.bulk_cancel_runs(("r1", "r2"))["cancelled"] == ["r1"]
    assert client.run_log("run-1")["run_id"] == "run-1"
    assert client.list_children("run-1")[0]["id"] == "child-1"

    assert [(r.method, r.url.path, body(r)) for r in script.requests] == [
        ("GET", "/v1/workflow-runs/run-1", None),
        ("POST", "/v1/workflow-runs/run-1/cancel", {}),
        ("POST", "/v1/workflow-runs/bulk-cancel", {"run_ids": ["r1", "r2"]}),
        ("GET", "/v1/workflow-runs/run-1/log", None),
        ("GET", "/v1/workflow-runs/run-1/children", None),
    ]
    assert script.requests[1].headers["Content-Type"] == "application/json"


def test_pause_and_resume_run(make_client: MakeClient) -> None:
    script = Script(ok(run("paused")), ok(run("paused")), ok(run("running")))
    client = make_client(script)

    assert client.pause_run("run-1")["status"] == "paused"
    assert client.pause_run("run-1", reason="hold on")["status"] == "paused"
    assert client.resume_run("run-1")["status"] == "running"

    assert [(r.method, r.url.path, body(r)) for r in script.requests] == [
        ("POST", "/v1/workflow-runs/run-1/pause", {}),
        ("POST", "/v1/workflow-runs/run-1/pause", {"reason": "hold on"}),
        ("POST", "/v1/workflow-runs/run-1/resume", None),
    ]


def test_pausing_a_finished_run_raises_a_conflict(make_client: MakeClient) -> None:
    answer = fail(409, "conflict", "Run run-1 already completed.", details={"status": "completed"})
    client = make_client(Script(answer, answer))

    with pytest.raises(FabricConflictError) as paused:
        client.pause_run("run-1")
    assert paused.value.code == "conflict"
    with pytest.raises(FabricConflictError):
        client.resume_run("run-1")


def test_resume_node_sends_the_data_itself(make_client: MakeClient) -> None:
    script = Script(ok({"resumed": True}), httpx.Response(204))
    client = make_client(script)

    assert client.resume_node("run-1", "approval_step", data={"approved": True}) == {
        "resumed": True
    }
    assert client.resume_node("run-1", "approval_step") is None

    first, second = script.requests
    assert first.url.path == "/v1/workflow-runs/run-1/nodes/approval_step/resume"
    assert body(first) == {"approved": True}
    assert body(second) == {}


def test_list_runs_query(make_client: MakeClient) -> None:
    page = {"items": [run("running")], "next_cursor": "c-2"}
    script = Script(ok(page))
    client = make_client(script)

    assert client.list_runs() == page
    client.list_runs(organization_id="org-1", status="running", limit=10, cursor="c-2")

    first, second = script.requests
    assert (first.url.path, dict(first.url.params)) == ("/v1/workflow-runs", {"limit": "50"})
    assert dict(second.url.params) == {
        "organization_id": "org-1",
        "status": "running",
        "limit": "10",
        "cursor": "c-2",
    }


def test_stream_run_events_ends_after_the_terminal_event(make_client: MakeClient) -> None:
    frames = [
        sse_frame("workflow.run.started", "e-1", run_id="run-1", payload={}),
        sse_frame("workflow.run.cancelled", "e-2", run_id="run-1", payload={}),
    ]
    script = Script(sse_response(frames))
    client = make_client(script)

    kinds = [event["kind"] for event in client.stream_run_events("run-1", include_internal=True)]

    assert kinds == ["workflow.run.started", "workflow.run.cancelled"]
    assert script.last.url.path == "/v1/workflow-runs/run-1/events"
    assert dict(script.last.url.params) == {"include_internal": "true"}


def test_stream_events_reconnects_and_filters(make_client: MakeClient) -> None:
    script = Script(
        sse_response([sse_frame("job.created", "e-1", payload={})]),
        sse_response([sse_frame("job.completed", "e-2", payload={})]),
    )
    client = make_client(script)

    stream = client.stream_events(kinds=["job.created", "job.completed"], organization_id="o-1")
    with stream:
        kinds = [next(stream)["kind"], next(stream)["kind"]]

    assert kinds == ["job.created", "job.completed"]
    first, second = script.requests
    assert first.url.path == "/v1/events/stream"
    assert dict(first.url.params) == {
        "kinds": "job.created,job.completed",
        "organization_id": "o-1",
    }
    assert second.headers["Last-Event-ID"] == "e-1"


def test_stream_events_default_query(make_client: MakeClient) -> None:
    script = Script(sse_response([sse_frame("job.created", "e-1", payload={})]))
    client = make_client(script)

    with client.stream_events() as stream:
        next(stream)

    assert script.last.url.query == b""


async def test_async_workflow_round_trip(
    make_async_client: MakeAsyncClient, sleeps: list[float]
) -> None:
    script = Script(
        ok({"id": "wf-1"}),
        ok(run("pending")),
        httpx.Response(202),
        ok(run("running")),
        ok(run("completed")),
        ok({"cancelled": [], "skipped": []}),
        ok(None),
    )
    client = make_async_client(script)

    wf_id = await client.upsert_workflow(name="p", nodes=NODES, defaults={"timeout": 300})
    run_id = await client.run_workflow(wf_id, context={"topic": "x"}, priority=1)
    result = await client.wait_for_run(run_id, poll_interval=0.5)
    await client.bulk_cancel_runs([run_id])
    assert await client.resume_node(run_id, "gate", data={"approved": True}) is None

    assert (wf_id, run_id, result["status"]) == ("wf-1", "run-1", "completed")
    assert sleeps == [0.5]
    assert [(r.method, r.url.path) for r in script.requests] == [
        ("POST", "/v1/workflow-definitions"),
        ("POST", "/v1/workflow-runs"),
        ("POST", "/v1/workflow-runs/run-1/start"),
        ("GET", "/v1/workflow-runs/run-1"),
        ("GET", "/v1/workflow-runs/run-1"),
        ("POST", "/v1/workflow-runs/bulk-cancel"),
        ("POST", "/v1/workflow-runs/run-1/nodes/gate/resume"),
    ]
    assert body(script.requests[2]) == {"priority": 1}
    assert body(script.requests[6]) == {"approved": True}


async def test_async_wait_for_run_times_out(make_async_client: MakeAsyncClient) -> None:
    clock = Clock()
    client = make_async_client(Script(ok(run("pending"))))
    client._clock = clock

    async def sleep(seconds: float) -> None:
        clock.now += seconds

    client._sleep = sleep

    with pytest.raises(TimeoutError):
        await client.wait_for_run("run-1", poll_interval=1.0, timeout=3.0)


async def test_async_run_reads_and_streams(make_async_client: MakeAsyncClient) -> None:
    script = Script(
        ok([{"id": "wf-1"}]),
        ok({"id": "wf-1"}),
        ok({"items": [], "next_cursor": None}),
        ok(run("cancelled")),
        ok({"run_id": "run-1"}),
        ok([]),
        sse_response([sse_frame("workflow.run.failed", "e-1", payload={"error": "x"})]),
        sse_response([sse_frame("job.created", "e-9", payload={})]),
    )
    client = make_async_client(script)

    assert await client.list_workflows() == [{"id": "wf-1"}]
    assert await client.get_workflow("wf-1") == {"id": "wf-1"}
    assert await client.list_runs(status="failed") == {"items": [], "next_cursor": None}
    assert (await client.cancel_run("run-1"))["status"] == "cancelled"
    assert await client.run_log("run-1") == {"run_id": "run-1"}
    assert await client.list_children("run-1") == []
    assert [e["kind"] async for e in client.stream_run_events("run-1")] == ["workflow.run.failed"]
    async with client.stream_events(include_internal=True) as stream:
        assert (await stream.__anext__())["kind"] == "job.created"

    assert dict(script.requests[2].url.params) == {"status": "failed", "limit": "50"}
    assert dict(script.last.url.params) == {"include_internal": "true"}


async def test_async_pause_and_resume_run(make_async_client: MakeAsyncClient) -> None:
    script = Script(ok(run("paused")), ok(run("waiting")))
    client = make_async_client(script)

    assert (await client.pause_run("run/1", reason="why"))["status"] == "paused"
    assert (await client.resume_run("run/1"))["status"] == "waiting"

    assert [(r.method, r.url.raw_path, body(r)) for r in script.requests] == [
        ("POST", b"/v1/workflow-runs/run%2F1/pause", {"reason": "why"}),
        ("POST", b"/v1/workflow-runs/run%2F1/resume", None),
    ]
