"""Code workers over HTTP: registration, tasks by long poll, leases fenced by attempt,
reports through the node's retry policy, cancellation, progress, time limits, and bad input.

These tests speak the worker protocol directly (as any worker would); the SDK's `Worker`
is tested against a real server in tests/test_workers_e2e.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from metrics_helpers import scrape
from server_helpers import assert_error, eventually
from tenancy_helpers import create_org, events_of, verified_user
from workflow_helpers import app_client, define, event_kinds, node, run_log, start, wait_for_run

from fabric_server.services import Services
from fabric_server.settings import DEFAULT_ORGANIZATION_ID
from fabric_server.testing import fast_settings

OP = "acme.double"


@pytest.fixture
async def api(
    database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    settings = fast_settings(
        database_url,
        tmp_path,
        worker_task_lease_seconds=1.0,
        worker_heartbeat_seconds=0.3,
        worker_task_output_max_bytes=2048,
    )
    async with app_client(settings) as pair:
        yield pair


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()["data"]


async def register(client: httpx.AsyncClient, *ops: str, name: str = "w1") -> dict[str, Any]:
    body = {
        "name": name,
        "operations": [{"name": op, "concurrency": 2} for op in (ops or (OP,))],
        "sdk_version": "test",
        "host": "test-host",
    }
    worker: dict[str, Any] = ok(await client.post("/v1/workers", json=body), 201)
    return worker


async def poll(
    client: httpx.AsyncClient, worker: dict[str, Any], wait: float = 5.0, **capacity: int
) -> list[dict[str, Any]]:
    body = {"capacity": capacity or {OP: 1}, "wait_seconds": wait}
    tasks: list[dict[str, Any]] = ok(
        await client.post(f"/v1/workers/{worker['id']}/tasks/poll", json=body)
    )
    return tasks


def task_path(worker: dict[str, Any], task: dict[str, Any], action: str) -> str:
    return f"/v1/workers/{worker['id']}/tasks/{task['id']}/{action}"


async def complete(
    client: httpx.AsyncClient, worker: dict[str, Any], task: dict[str, Any], output: Any
) -> httpx.Response:
    body = {"attempt": task["attempt"], "output": output}
    return await client.post(task_path(worker, task, "complete"), json=body)


async def fail(
    client: httpx.AsyncClient,
    worker: dict[str, Any],
    task: dict[str, Any],
    error: str,
    retryable: bool = True,
) -> httpx.Response:
    body = {"attempt": task["attempt"], "error": error, "retryable": retryable}
    return await client.post(task_path(worker, task, "fail"), json=body)


async def start_doubling(client: httpx.AsyncClient, **node_extra: Any) -> dict[str, Any]:
    """A run whose node doubles `context.n` in a code worker, then a built-in node."""
    nodes = [
        {
            "key": "double",
            "type": OP,
            "inputs": {"n": "$context.n"},
            "config": {"label": "run {{context.label}}"},
            "outputs": {"doubled": "$context.result"},
            **node_extra,
        },
        {"key": "after", "operation": "workflow.noop", "depends_on": ["double"]},
    ]
    definition = await define(client, nodes)
    return await start(client, definition["id"], {"n": 21, "label": "one"})


async def test_a_worker_runs_a_node_and_the_run_goes_on(
    api: tuple[httpx.AsyncClient, Services],
) -> None:
    client, _ = api
    worker = await register(client)
    assert worker["status"] == "online"
    assert worker["operations"] == [{"name": OP, "concurrency": 2}]
    run = await start_doubling(client)
    (task,) = await poll(client, worker)
    assert task["operation"] == OP
    assert task["run_id"] == run["id"]
    assert task["inputs"] == {"n": 21}
    assert task["config"] == {"label": "run one"}  # templates rendered, like built-in nodes
    assert task["node_key"] == "double"
    assert task["node_attempt"] == 1
    assert task["attempt"] == 1
    assert task["idempotency_key"] == f"{run['id']}:double:1"
    assert task["secrets"] == {}
    listed = ok(await client.get("/v1/workers"))["items"]
    assert [(w["id"], w["tasks_in_flight"]) for w in listed] == [(worker["id"], 1)]

    progress = {"attempt": task["attempt"], "progress": 0.5, "message": "halfway"}
    ok(await client.post(task_path(worker, task, "progress"), json=progress), 202)
    line = {"attempt": task["attempt"], "message": "computing", "level": "info"}
    ok(await client.post(task_path(worker, task, "log"), json=line), 202)
    assert ok(await complete(client, worker, task, {"doubled": 42}))["status"] == "completed"

    done = await wait_for_run(client, run["id"])
    assert done["status"] == "completed"
    assert done["context"]["result"] == 42
    assert node(done, "double")["output"] == {"doubled": 42}
    kinds = [kind for kind, key in await event_kinds(client, run["id"]) if key == "double"]
    assert kinds[:6] == [
        "workflow.node.ready",
        "workflow.node.started",
        "workflow.node.dispatched",
        "workflow.node.claimed",
        "workflow.node.progress",
        "workflow.node.log",
    ]
    events = (await run_log(client, run["id"]))["events"]
    (progressed,) = [e for e in events if e["kind"] == "workflow.node.progress"]
    assert progressed["payload"]["progress"] == 0.5
    assert progressed["payload"]["message"] == "halfway"


async def test_the_explicit_form_names_the_operation_in_config(
    api: tuple[httpx.AsyncClient, Services],
) -> None:
    client, _ = api
    worker = await register(client)
    nodes = [{"key": "x", "type": "worker.task", "config": {"operation": OP, "size": 3}}]
    run = await start(client, (await define(client, nodes))["id"])
    (task,) = await poll(client, worker)
    assert task["operation"] == OP
    assert task["config"] == {"size": 3}
    ok(await complete(client, worker, task, {"ok": True}))
    assert (await wait_for_run(client, run["id"]))["status"] == "completed"


async def test_a_failure_is_retried_by_the_node_policy_then_fails_the_run(
    api: tuple[httpx.AsyncClient, Services],
) -> None:
    client, _ = api
    worker = await register(client)
    run = await start_doubling(client, policy={"max_retries": 1})
    first = (await poll(client, worker))[0]
    ok(await fail(client, worker, first, "ValueError: flaky"))
    second = (await poll(client, worker))[0]
    assert second["node_attempt"] == 2
    assert second["id"] != first["id"]
    ok(await fail(client, worker, second, "ValueError: flaky again"))
    failed = await wait_for_run(client, run["id"])
    assert failed["status"] == "failed"
    assert "ValueError: flaky again" in node(failed, "double")["error"]
    assert node(failed, "double")["attempts"] == 2


async def test_a_failure_not_worth_retrying_fails_at_once_with_its_details(
    api: tuple[httpx.AsyncClient, Services],
) -> None:
    client, _ = api
    worker = await register(client)
    run = await start_doubling(client, policy={"max_retries": 5})
    (task,) = await poll(client, worker)
    body = {
        "attempt": task["attempt"],
        "error": "the image is not a PNG",
        "retryable": False,
        "details": {"format": "gif"},
    }
    ok(await client.post(task_path(worker, task, "fail"), json=body))
    failed = await wait_for_run(client, run["id"])
    assert failed["status"] == "failed"
    assert node(failed, "double")["attempts"] == 1
    events = (await run_log(client, run["id"]))["events"]
    logged = [e for e in events if e["kind"] == "workflow.node.log"]
    assert logged[0]["payload"]["details"] == {"format": "gif"}


async def test_a_task_whose_worker_went_silent_goes_to_another_and_completes_once(
    api: tuple[httpx.AsyncClient, Services],
) -> None:
    client, _ = api
    dead, alive = await register(client, name="dead"), await register(client, name="alive")
    run = await start_doubling(client)
    (taken,) = await poll(client, dead)
    # The dead worker never heartbeats: once its lease expires, the other takes the task.
    (again,) = await poll(client, alive, wait=10.0)
    assert again["id"] == taken["id"]
    assert again["attempt"] == taken["attempt"] + 1
    assert again["node_attempt"] == taken["node_attempt"]  # the same attempt of the node
    ok(await complete(client, alive, again, {"doubled": 42}))
    late = await complete(client, dead, taken, {"doubled": -1})
    assert_error(late, 409, "lease_lost")
    twice = await complete(client, alive, again, {"doubled": 0})
    assert_error(twice, 409, "lease_lost")
    done = await wait_for_run(client, run["id"])
    assert done["status"] == "completed"
    assert done["context"]["result"] == 42
    kinds = [kind for kind, key in await event_kinds(client, run["id"]) if key == "double"]
    assert kinds.count("workflow.node.completed") == 1


async def test_heartbeats_keep_the_lease_and_carry_a_cancellation_back(
    api: tuple[httpx.AsyncClient, Services],
) -> None:
    client, _ = api
    worker, other = await register(client), await register(client, name="other")
    run = await start_doubling(client)
    (task,) = await poll(client, worker)
    held = {"tasks": [{"id": task["id"], "attempt": task["attempt"]}]}
    beat_path = f"/v1/workers/{worker['id']}/heartbeat"
    for _ in range(4):  # longer than the lease: heartbeats keep it
        assert ok(await client.post(beat_path, json=held))["cancel"] == []
        assert await poll(client, other, wait=0.3) == []
    ok(await client.post(f"/v1/workflow-runs/{run['id']}/cancel", json={}))
    assert ok(await client.post(beat_path, json=held))["cancel"] == [task["id"]]
    assert_error(await complete(client, worker, task, {"doubled": 42}), 409, "task_cancelled")
    cancelled = await wait_for_run(client, run["id"])
    assert cancelled["status"] == "cancelled"


async def test_a_queued_task_is_withdrawn_when_its_run_is_cancelled(
    api: tuple[httpx.AsyncClient, Services],
) -> None:
    client, _ = api
    worker = await register(client)
    run = await start_doubling(client)
    await eventually(
        lambda: event_kinds(client, run["id"]),
        lambda kinds: ("workflow.node.dispatched", "double") in kinds,
    )
    ok(await client.post(f"/v1/workflow-runs/{run['id']}/cancel", json={}))
    assert await poll(client, worker, wait=0.2) == []


async def test_a_poll_that_waits_receives_a_task_created_meanwhile(
    api: tuple[httpx.AsyncClient, Services],
) -> None:
    client, _ = api
    worker = await register(client)
    waiting = asyncio.create_task(poll(client, worker, wait=20.0))
    await asyncio.sleep(0)  # the poll is under way before the run exists
    run = await start_doubling(client)
    (task,) = await asyncio.wait_for(waiting, 20.0)
    assert task["run_id"] == run["id"]


async def test_nobody_taking_a_task_fails_the_node_after_its_schedule_to_start_timeout(
    api: tuple[httpx.AsyncClient, Services],
) -> None:
    client, _ = api
    run = await start_doubling(client, config={"schedule_to_start_timeout": 0.2})
    failed = await wait_for_run(client, run["id"])
    assert failed["status"] == "failed"
    error = node(failed, "double")["error"]
    assert "no code worker took the task within 0.2 s" in error
    assert OP in error


async def test_a_task_past_its_time_limit_is_stopped_and_retried(
    api: tuple[httpx.AsyncClient, Services],
) -> None:
    client, _ = api
    worker = await register(client)
    run = await start_doubling(client, config={"timeout": 0.2}, policy={"max_retries": 1})
    (task,) = await poll(client, worker)
    assert task["timeout_seconds"] == 0.2
    held = {"tasks": [{"id": task["id"], "attempt": task["attempt"]}]}

    async def beat() -> list[str]:
        answer = await client.post(f"/v1/workers/{worker['id']}/heartbeat", json=held)
        cancel: list[str] = ok(answer)["cancel"]
        return cancel

    assert await eventually(beat, lambda cancel: cancel == [task["id"]])
    (retried,) = await poll(client, worker)
    assert retried["node_attempt"] == 2
    events = (await run_log(client, run["id"]))["events"]
    failed = [e for e in events if e["kind"] == "workflow.node.failed" or "retry" in e["kind"]]
    assert any("timed out after 0.2 s" in str(e["payload"]) for e in failed), failed


async def test_secrets_reach_a_task_only_by_name(api: tuple[httpx.AsyncClient, Services]) -> None:
    client, _ = api
    for name, value in (("API_TOKEN", "tok-123"), ("OTHER", "never-sent")):
        body = {"name": name, "value": value}
        ok(
            await client.post(f"/v1/organizations/{DEFAULT_ORGANIZATION_ID}/secrets", json=body),
            201,
        )
    worker = await register(client)
    await start_doubling(client, config={"secrets": ["API_TOKEN", "MISSING"]})
    (task,) = await poll(client, worker)
    assert task["secrets"] == {"API_TOKEN": "tok-123"}
    assert "secrets" not in task["config"]


async def test_deregistering_hands_held_tasks_back_at_once(
    api: tuple[httpx.AsyncClient, Services],
) -> None:
    client, services = api
    leaving, staying = (
        await register(client, name="leaving"),
        await register(client, name="staying"),
    )
    await start_doubling(client)
    (task,) = await poll(client, leaving)
    stopped = ok(await client.delete(f"/v1/workers/{leaving['id']}"))
    assert stopped["status"] == "offline"
    assert stopped["stopped_at"]
    (again,) = await poll(client, staying, wait=0.5)  # not after the lease: at once
    assert again["id"] == task["id"]
    assert again["attempt"] == task["attempt"]
    assert_error(await poll_raw(client, leaving), 409, "worker_stopped")
    offline = [p for kind, p in await worker_events(services) if kind == "worker.offline"]
    assert offline[0]["worker_id"] == leaving["id"]
    assert offline[0]["tasks_released"] == 1


async def test_a_silent_worker_is_announced_offline_and_online_again(
    api: tuple[httpx.AsyncClient, Services],
) -> None:
    client, services = api
    worker = await register(client)

    async def status() -> str:
        return str(ok(await client.get(f"/v1/workers/{worker['id']}"))["status"])

    assert await eventually(status, lambda s: s == "stale")
    await eventually(
        lambda: worker_events(services),
        lambda events: any(kind == "worker.offline" for kind, _ in events),
    )
    ok(await client.post(f"/v1/workers/{worker['id']}/heartbeat", json={"tasks": []}))
    assert await status() == "online"
    kinds = [kind for kind, _ in await worker_events(services)]
    assert kinds == ["worker.online", "worker.offline", "worker.online"]


async def test_bad_reports_are_clear_errors_and_lose_nothing(
    api: tuple[httpx.AsyncClient, Services],
) -> None:
    client, _ = api
    worker = await register(client)
    run = await start_doubling(client)
    (task,) = await poll(client, worker)
    unknown = {**task, "id": "01a24508-0000-7000-8000-000000000000"}
    assert_error(await complete(client, worker, unknown, {"doubled": 1}), 404, "not_found")
    too_large = await complete(client, worker, task, {"doubled": "x" * 4096})
    assert_error(too_large, 422, "output_too_large")
    not_an_object = await complete(client, worker, task, ["not", "an", "object"])
    assert_error(not_an_object, 400, "validation_failed")
    raw = await client.post(
        task_path(worker, task, "complete"),
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert raw.status_code == 400
    assert raw.json()["error"]["code"]
    wrong_attempt = {**task, "attempt": task["attempt"] + 1}
    assert_error(await complete(client, worker, wrong_attempt, {"doubled": 1}), 409, "lease_lost")
    unserved = await client.post(
        f"/v1/workers/{worker['id']}/tasks/poll", json={"capacity": {"acme.other": 1}}
    )
    assert_error(unserved, 422, "validation_failed")
    reserved = {"name": "w", "operations": [{"name": "ai.generate"}]}
    assert_error(await client.post("/v1/workers", json=reserved), 400, "validation_failed")
    # Nothing was lost: the task is still ours and completes.
    ok(await complete(client, worker, task, {"doubled": 42}))
    assert (await wait_for_run(client, run["id"]))["context"]["result"] == 42


async def poll_raw(client: httpx.AsyncClient, worker: dict[str, Any]) -> httpx.Response:
    body = {"capacity": {OP: 1}, "wait_seconds": 0}
    return await client.post(f"/v1/workers/{worker['id']}/tasks/poll", json=body)


async def worker_events(services: Services) -> list[tuple[str, dict[str, Any]]]:
    return [(e.kind, e.payload or {}) for e in await events_of(services, "worker.")]


async def test_a_worker_only_ever_sees_its_own_organizations_tasks(
    api: tuple[httpx.AsyncClient, Services],
) -> None:
    client, services = api
    bob = await verified_user(client, services, "bob@example.com")
    org_b = await create_org(client, bob, "org-b")
    # A key limited to the worker protocol: it can serve tasks, nothing else.
    key = ok(
        await client.post(
            "/v1/api-keys",
            json={"name": "worker", "organization_id": org_b["id"], "scopes": ["worker.execute"]},
            headers=bob.headers,
        ),
        201,
    )
    as_b = {"authorization": f"Bearer {key['key']}"}
    body = {"name": "b", "operations": [{"name": OP}]}
    worker_b = ok(await client.post("/v1/workers", json=body, headers=as_b), 201)
    assert worker_b["organization_id"] == org_b["id"]  # the key's organization
    job = {"modality": "text", "input": {"prompt": "p"}}
    assert_error(await client.post("/v1/jobs", json=job, headers=as_b), 403, "forbidden")

    worker_a = await register(client)  # the default organization's
    await start_doubling(client)
    poll_b = {"capacity": {OP: 5}, "wait_seconds": 0.3}
    path_b = f"/v1/workers/{worker_b['id']}/tasks/poll"
    assert ok(await client.post(path_b, json=poll_b, headers=as_b)) == []
    (task,) = await poll(client, worker_a)
    report = {"attempt": task["attempt"], "output": {"doubled": 0}}
    stolen = await client.post(
        f"/v1/workers/{worker_b['id']}/tasks/{task['id']}/complete", json=report, headers=as_b
    )
    assert_error(stolen, 404, "not_found")
    listed = ok(await client.get("/v1/workers", headers=as_b))["items"]
    assert [w["id"] for w in listed] == [worker_b["id"]]
    assert_error(await client.get(f"/v1/workers/{worker_a['id']}", headers=as_b), 404, "not_found")
    # Still A's: it completes.
    ok(await complete(client, worker_a, task, {"doubled": 42}))


async def test_registering_needs_the_worker_execute_scope(
    api: tuple[httpx.AsyncClient, Services],
) -> None:
    client, _ = api
    key = ok(
        await client.post(
            "/v1/api-keys",
            json={
                "name": "reader",
                "organization_id": DEFAULT_ORGANIZATION_ID,
                "scopes": ["workflow.read"],
            },
        ),
        201,
    )
    body = {"name": "w", "operations": [{"name": OP}]}
    headers = {"authorization": f"Bearer {key['key']}"}
    assert_error(await client.post("/v1/workers", json=body, headers=headers), 403, "forbidden")


async def test_tasks_are_counted_with_how_long_they_waited_for_a_worker(
    api: tuple[httpx.AsyncClient, Services],
) -> None:
    client, _ = api
    before = await scrape(client)
    worker = await register(client)
    await start_doubling(client)
    (task,) = await poll(client, worker)
    ok(await complete(client, worker, task, {"doubled": 42}))
    after = await scrape(client)

    def grew(name: str, **labels: str) -> float:
        was = before.value(name, **labels) if before.has(name, **labels) else 0.0
        return after.value(name, **labels) - was

    assert grew("fabric_worker_tasks_total", operation=OP, event="dispatched") == 1
    assert grew("fabric_worker_tasks_total", operation=OP, event="claimed") == 1
    assert grew("fabric_worker_task_wait_seconds_count", operation=OP) == 1
