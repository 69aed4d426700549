"""`AsyncWorker` / `Worker` against a scripted server speaking the code-worker protocol.

The server side is an `httpx.MockTransport` with an async handler: polls wait until the test
hands out a task, reports and notes are recorded on queues the test awaits. Nothing waits on
wall-clock luck: every wait is on an event, bounded by a deadline.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Callable, TypeVar

import httpx
import pytest

from fabric_platform import (
    AsyncWorker,
    FabricAuthError,
    OperationError,
    Step,
    Worker,
)
from fabric_platform._worker_cli import load_worker, main
from fabric_platform._worker_protocol import Backoff

from .helpers import fail, ok

T = TypeVar("T")
DEADLINE = 5.0
WORKER_ID = "wrk_1"


async def within(awaitable: Awaitable[T], seconds: float = DEADLINE) -> T:
    return await asyncio.wait_for(awaitable, seconds)


def task(task_id: str = "wi_1", operation: str = "acme.double", **extra: Any) -> dict[str, Any]:
    return {
        "id": task_id,
        "attempt": 1,
        "operation": operation,
        "run_id": "run_1",
        "node_key": "double",
        "node_attempt": 1,
        "inputs": {"n": 21},
        "config": {"label": "one"},
        "secrets": {"API_TOKEN": "s3cret"},
        "timeout_seconds": None,
        "lease_expires_at": "2026-01-01T00:00:00Z",
        "idempotency_key": "run_1:double:1",
        **extra,
    }


class FakeServer:
    """The server side of the protocol, scripted by each test."""

    def __init__(self, heartbeat_interval: float = 3600.0) -> None:
        self.heartbeat_interval = heartbeat_interval
        self.requests: list[tuple[str, str, Any]] = []
        self.read_timeouts: list[float] = []
        self.tasks: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.polls: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.reports: asyncio.Queue[tuple[str, str, dict[str, Any]]] = asyncio.Queue()
        self.notes: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self.heartbeats: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.cancel: list[str] = []
        self.deregistered = asyncio.Event()
        # Answers (or exceptions) to give instead of the normal one, per route name.
        self.scripted: dict[str, list[Any]] = {}
        self.registrations = 0

    def script(self, route: str, *answers: Any) -> None:
        self.scripted.setdefault(route, []).extend(answers)

    def paths(self) -> list[str]:
        return [f"{method} {path}" for method, path, _ in self.requests]

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        path = request.url.path
        self.requests.append((request.method, path, body))
        self.read_timeouts.append(request.extensions["timeout"]["read"])
        route = self._route(request.method, path)
        if self.scripted.get(route):
            answer = self.scripted[route].pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer  # type: ignore[no-any-return]
        return await getattr(self, "_" + route)(path, body)

    def _route(self, method: str, path: str) -> str:
        parts = path.strip("/").split("/")  # v1 workers {id} ...
        if method == "POST" and len(parts) == 2:
            return "register"
        if method == "DELETE":
            return "deregister"
        return parts[-1]  # poll, heartbeat, complete, fail, progress, log

    async def _register(self, path: str, body: Any) -> httpx.Response:
        self.registrations += 1
        worker_id = WORKER_ID if self.registrations == 1 else f"{WORKER_ID}_{self.registrations}"
        return ok(
            {
                "id": worker_id,
                "name": body["name"],
                "operations": body["operations"],
                "status": "online",
                "heartbeat_interval_seconds": self.heartbeat_interval,
                "lease_seconds": 30.0,
            },
            201,
        )

    async def _deregister(self, path: str, body: Any) -> httpx.Response:
        self.deregistered.set()
        return ok({"id": path.rsplit("/", 1)[-1], "status": "offline"})

    async def _poll(self, path: str, body: Any) -> httpx.Response:
        await self.polls.put(body)
        handed = [await self.tasks.get()]
        while not self.tasks.empty():
            handed.append(self.tasks.get_nowait())
        return ok(handed)

    async def _heartbeat(self, path: str, body: Any) -> httpx.Response:
        cancel, self.cancel = self.cancel, []
        await self.heartbeats.put(body)
        return ok({"cancel": cancel, "lease_expires_at": "2026-01-01T00:00:30Z"})

    async def _report(self, path: str, body: Any) -> httpx.Response:
        parts = path.strip("/").split("/")
        await self.reports.put((parts[-1], parts[-2], body))
        status = "completed" if parts[-1] == "complete" else "failed"
        return ok({"task_id": parts[-2], "status": status})

    _complete = _report
    _fail = _report

    async def _note(self, path: str, body: Any) -> httpx.Response:
        parts = path.strip("/").split("/")
        await self.notes.put((parts[-1], body))
        return ok({"task_id": parts[-2], "accepted": True}, 202)

    _progress = _note
    _log = _note


@pytest.fixture
async def server() -> FakeServer:
    return FakeServer()


def make_worker(server: FakeServer, **kwargs: Any) -> AsyncWorker:
    kwargs.setdefault("name", "test-worker")
    worker = AsyncWorker(
        "http://fabric.test", "fab_k", transport=httpx.MockTransport(server), **kwargs
    )
    worker._backoff = Backoff(base=0.001, cap=0.002)
    return worker


@asynccontextmanager
async def running(worker: AsyncWorker) -> AsyncIterator[asyncio.Task[None]]:
    """Run the worker in the background until the block ends (then stop it and wait)."""
    runner = asyncio.ensure_future(worker.run())
    try:
        yield runner
    finally:
        worker.stop()
        await within(asyncio.gather(runner, return_exceptions=True))


async def test_registers_its_operations_then_polls_with_the_free_capacity(
    server: FakeServer,
) -> None:
    worker = make_worker(server, poll_wait_seconds=12)

    @worker.operation("acme.double", concurrency=4)
    def double(inputs: dict[str, Any], step: Step) -> dict[str, Any]:
        return {}

    @worker.operation("acme.summarize")
    async def summarize(inputs: dict[str, Any], step: Step) -> dict[str, Any]:
        return {}

    async with running(worker):
        poll = await within(server.polls.get())

    method, path, body = server.requests[0]
    assert (method, path) == ("POST", "/v1/workers")
    assert body["name"] == "test-worker"
    assert body["operations"] == [
        {"name": "acme.double", "concurrency": 4},
        {"name": "acme.summarize", "concurrency": 1},
    ]
    assert body["sdk_version"] == "0.1.0"
    assert isinstance(body["host"], str)
    assert body["host"]
    assert poll == {"capacity": {"acme.double": 4, "acme.summarize": 1}, "wait_seconds": 12.0}
    at = server.paths().index(f"POST /v1/workers/{WORKER_ID}/tasks/poll")
    assert server.read_timeouts[at] >= 12.0 + 10  # the server holds a poll up to wait_seconds
    assert "organization_id" not in body  # the API key's organization
    assert worker.worker_id == WORKER_ID


async def test_the_organization_comes_from_the_usual_settings(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FABRIC_ORGANIZATION_ID", "org_env")
    worker = make_worker(server)
    worker.add_operation("acme.double", lambda inputs, step: {})

    async with running(worker):
        await within(server.polls.get())

    assert server.requests[0][2]["organization_id"] == "org_env"


async def test_the_default_name_is_host_and_pid() -> None:
    import os
    import socket

    assert AsyncWorker(api_key="k").name == f"{socket.gethostname()}:{os.getpid()}"


async def test_a_sync_function_runs_in_a_thread_and_its_output_is_reported(
    server: FakeServer,
) -> None:
    worker = make_worker(server)
    seen: dict[str, Any] = {}

    @worker.operation("acme.double")
    def double(inputs: dict[str, Any], step: Step) -> dict[str, Any]:
        seen["thread"] = threading.current_thread()
        seen["step"] = step
        return {"doubled": inputs["n"] * 2}

    async with running(worker):
        await server.tasks.put(task())
        kind, task_id, body = await within(server.reports.get())

    assert (kind, task_id, body) == ("complete", "wi_1", {"attempt": 1, "output": {"doubled": 42}})
    assert seen["thread"] is not threading.main_thread()
    step = seen["step"]
    assert (step.task_id, step.attempt, step.run_id, step.node_key, step.node_attempt) == (
        "wi_1",
        1,
        "run_1",
        "double",
        1,
    )
    assert step.idempotency_key == "run_1:double:1"
    assert step.operation == "acme.double"
    assert step.config == {"label": "one"}
    assert step.secrets == {"API_TOKEN": "s3cret"}
    assert step.cancelled is False


async def test_an_async_function_runs_on_the_loop_and_none_means_an_empty_output(
    server: FakeServer,
) -> None:
    worker = make_worker(server)
    loops: list[asyncio.AbstractEventLoop] = []

    @worker.operation("acme.double")
    async def double(inputs: dict[str, Any], step: Step) -> None:
        loops.append(asyncio.get_running_loop())

    async with running(worker):
        await server.tasks.put(task())
        report = await within(server.reports.get())

    assert report == ("complete", "wi_1", {"attempt": 1, "output": {}})
    assert loops == [asyncio.get_running_loop()]


async def test_an_exception_is_a_retryable_failure_with_the_traceback(server: FakeServer) -> None:
    worker = make_worker(server)

    @worker.operation("acme.double")
    def double(inputs: dict[str, Any], step: Step) -> dict[str, Any]:
        raise ValueError("n is too large")

    async with running(worker):
        await server.tasks.put(task())
        kind, _, body = await within(server.reports.get())

    assert kind == "fail"
    assert body["error"] == "ValueError: n is too large"
    assert body["retryable"] is True
    assert body["details"]["type"] == "ValueError"
    assert 'raise ValueError("n is too large")' in body["details"]["traceback"]


async def test_operation_error_fails_as_asked(server: FakeServer) -> None:
    worker = make_worker(server)

    @worker.operation("acme.double")
    async def double(inputs: dict[str, Any], step: Step) -> dict[str, Any]:
        if step.attempt == 1:
            raise OperationError("no such image", details={"url": "x"})
        raise OperationError("try later", retryable=True, details={"at": object()})

    async with running(worker):
        await server.tasks.put(task())
        first = await within(server.reports.get())
        await server.tasks.put(task("wi_2", attempt=2))
        second = await within(server.reports.get())

    assert first == (
        "fail",
        "wi_1",
        {"attempt": 1, "error": "no such image", "retryable": False, "details": {"url": "x"}},
    )
    assert second == (
        "fail",
        "wi_2",
        {"attempt": 2, "error": "try later", "retryable": True, "details": second[2]["details"]},
    )
    assert second[2]["details"]["repr"].startswith("{'at': <object object at")


@pytest.mark.parametrize(
    ("returned", "said"),
    [
        (lambda: [1, 2], "returned list, not a dict"),
        (lambda: "text", "returned str, not a dict"),
        (lambda: {"when": object()}, "output is not JSON"),
        (lambda: {"x": float("nan")}, "output is not JSON"),
        (lambda: asyncio.sleep(0), "returned a coroutine: declare it with async def"),
    ],
)
async def test_an_output_that_is_not_a_json_object_fails_for_good(
    server: FakeServer, returned: Callable[[], Any], said: str
) -> None:
    worker = make_worker(server)
    worker.add_operation("acme.double", lambda inputs, step: returned())

    async with running(worker):
        await server.tasks.put(task())
        kind, _, body = await within(server.reports.get())

    assert kind == "fail"
    assert said in body["error"]
    assert body["retryable"] is False


async def test_an_async_function_past_its_time_limit_is_cancelled(server: FakeServer) -> None:
    worker = make_worker(server)
    cancelled = asyncio.Event()

    @worker.operation("acme.double", timeout=0.05)
    async def double(inputs: dict[str, Any], step: Step) -> dict[str, Any]:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return {}

    async with running(worker):
        await server.tasks.put(task())
        kind, _, body = await within(server.reports.get())
        await within(cancelled.wait())

    assert kind == "fail"
    assert body["error"] == "timed out after 0.05 s"
    assert body["retryable"] is True


async def test_a_sync_function_past_the_tasks_time_limit_is_told_and_abandoned(
    server: FakeServer,
) -> None:
    worker = make_worker(server)
    saw_cancelled = threading.Event()
    release = threading.Event()

    @worker.operation("acme.double", timeout=600)
    def double(inputs: dict[str, Any], step: Step) -> dict[str, Any]:
        while not step.cancelled:
            release.wait(0.01)
        saw_cancelled.set()
        release.wait(DEADLINE)
        return {"late": True}

    async with running(worker):
        await within(server.polls.get())
        # The task's own limit is the smaller one: it applies.
        await server.tasks.put(task(timeout_seconds=0.05))
        kind, _, body = await within(server.reports.get())
        assert await within(asyncio.to_thread(saw_cancelled.wait, DEADLINE))
        # The abandoned function holds its slot until it really returns: no poll meanwhile.
        polls_while_abandoned = sum(p.endswith("/poll") for p in server.paths())
        release.set()
        assert (await within(server.polls.get()))["capacity"] == {"acme.double": 1}

    assert (kind, body["error"], body["retryable"]) == ("fail", "timed out after 0.05 s", True)
    assert polls_while_abandoned == 1
    assert server.reports.empty()  # the late result is never reported


async def test_each_poll_asks_for_the_free_slots_of_each_operation(server: FakeServer) -> None:
    worker = make_worker(server)
    started = asyncio.Event()
    release = asyncio.Event()

    @worker.operation("acme.double", concurrency=2)
    async def double(inputs: dict[str, Any], step: Step) -> dict[str, Any]:
        started.set()
        await release.wait()
        return {}

    @worker.operation("acme.other")
    async def other(inputs: dict[str, Any], step: Step) -> dict[str, Any]:
        return {}

    async with running(worker):
        capacities = [(await within(server.polls.get()))["capacity"]]
        await server.tasks.put(task("wi_1"))
        capacities.append((await within(server.polls.get()))["capacity"])
        await server.tasks.put(task("wi_2"))
        capacities.append((await within(server.polls.get()))["capacity"])
        release.set()
        reported = {(await within(server.reports.get()))[1] for _ in range(2)}

    assert capacities == [
        {"acme.double": 2, "acme.other": 1},
        {"acme.double": 1, "acme.other": 1},
        {"acme.double": 0, "acme.other": 1},
    ]
    assert reported == {"wi_1", "wi_2"}


async def test_a_full_worker_does_not_poll_until_a_slot_frees(server: FakeServer) -> None:
    worker = make_worker(server)
    started = asyncio.Event()
    release = asyncio.Event()

    @worker.operation("acme.double")
    async def double(inputs: dict[str, Any], step: Step) -> dict[str, Any]:
        started.set()
        await release.wait()
        return {}

    async with running(worker):
        await within(server.polls.get())
        await server.tasks.put(task())
        await within(started.wait())
        polls_while_full = sum(1 for p in server.paths() if p.endswith("/poll"))
        release.set()
        await within(server.reports.get())
        assert (await within(server.polls.get()))["capacity"] == {"acme.double": 1}

    assert polls_while_full == 1


async def test_a_task_cancelled_in_a_heartbeat_is_stopped_and_not_reported() -> None:
    server = FakeServer(heartbeat_interval=0.01)
    worker = make_worker(server)
    async_cancelled = asyncio.Event()
    sync_saw = threading.Event()

    @worker.operation("acme.double")
    async def double(inputs: dict[str, Any], step: Step) -> dict[str, Any]:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            assert step.cancelled
            async_cancelled.set()
            raise
        return {}

    @worker.operation("acme.slow")
    def slow(inputs: dict[str, Any], step: Step) -> dict[str, Any]:
        while not step.cancelled:
            sync_saw.wait(0.01)
        sync_saw.set()
        return {"finished": "anyway"}

    async with running(worker):
        await server.tasks.put(task("wi_a"))
        await server.tasks.put(task("wi_s", operation="acme.slow"))
        # Wait for a heartbeat that holds both tasks, then cancel them in the next answer.
        while True:
            beat = await within(server.heartbeats.get())
            if {t["id"] for t in beat["tasks"]} == {"wi_a", "wi_s"}:
                break
        assert sorted(beat["tasks"], key=lambda t: t["id"]) == [
            {"id": "wi_a", "attempt": 1},
            {"id": "wi_s", "attempt": 1},
        ]
        server.cancel = ["wi_a", "wi_s"]
        await within(async_cancelled.wait())
        assert await within(asyncio.to_thread(sync_saw.wait, DEADLINE))
        # Both are gone from the heartbeats, and neither was reported.
        while True:
            beat = await within(server.heartbeats.get())
            if beat["tasks"] == []:
                break

    assert server.reports.empty()


async def test_progress_and_logs_are_sent_in_order_before_the_outcome(server: FakeServer) -> None:
    worker = make_worker(server)

    @worker.operation("acme.double")
    def double(inputs: dict[str, Any], step: Step) -> dict[str, Any]:
        step.progress(0.25, "a quarter")
        step.log("computing", level="debug")
        step.progress(1.2)  # clamped
        return {}

    @worker.operation("acme.async")
    async def other(inputs: dict[str, Any], step: Step) -> dict[str, Any]:
        step.log("from the loop")
        step.progress(message="almost")
        return {}

    async with running(worker):
        await server.tasks.put(task())
        await within(server.reports.get())
        await server.tasks.put(task("wi_2", operation="acme.async"))
        await within(server.reports.get())

    notes = [server.notes.get_nowait() for _ in range(server.notes.qsize())]
    about_tasks = [p.rsplit("/", 2)[-2:] for p in server.paths() if "/tasks/wi_" in p]
    assert notes == [
        ("progress", {"attempt": 1, "progress": 0.25, "message": "a quarter"}),
        ("log", {"attempt": 1, "message": "computing", "level": "debug"}),
        ("progress", {"attempt": 1, "progress": 1.0, "message": None}),
        ("log", {"attempt": 1, "message": "from the loop", "level": "info"}),
        ("progress", {"attempt": 1, "progress": None, "message": "almost"}),
    ]
    assert about_tasks == [
        ["wi_1", "progress"],
        ["wi_1", "log"],
        ["wi_1", "progress"],
        ["wi_1", "complete"],
        ["wi_2", "log"],
        ["wi_2", "progress"],
        ["wi_2", "complete"],
    ]


async def test_a_failing_note_is_logged_not_raised(server: FakeServer) -> None:
    worker = make_worker(server)
    server.script("progress", fail(400, "validation_error", "bad"))

    @worker.operation("acme.double")
    def double(inputs: dict[str, Any], step: Step) -> dict[str, Any]:
        step.progress(0.5)
        step.log("still here")
        return {"ok": True}

    async with running(worker):
        await server.tasks.put(task())
        report = await within(server.reports.get())

    assert report[0] == "complete"
    assert (await within(server.notes.get()))[0] == "log"


async def test_a_report_answered_409_is_dropped(server: FakeServer) -> None:
    worker = make_worker(server)
    server.script("complete", fail(409, "lease_lost", "Task wi_1 is no longer leased."))

    @worker.operation("acme.double")
    def double(inputs: dict[str, Any], step: Step) -> dict[str, Any]:
        return {"n": inputs["n"]}

    async with running(worker):
        await server.tasks.put(task())
        await server.tasks.put(task("wi_2"))
        report = await within(server.reports.get())

    assert report[:2] == ("complete", "wi_2")
    completes = [p for p in server.paths() if p.endswith("/complete")]
    assert len(completes) == 2  # one each: the refused one was not sent again
    assert server.reports.empty()


async def test_an_output_too_large_becomes_a_final_failure(server: FakeServer) -> None:
    worker = make_worker(server)
    message = "The output is 3000 bytes; the limit is 2048."
    server.script("complete", fail(422, "output_too_large", message))

    @worker.operation("acme.double")
    def double(inputs: dict[str, Any], step: Step) -> dict[str, Any]:
        return {"big": "x" * 3000}

    async with running(worker):
        await server.tasks.put(task())
        kind, task_id, body = await within(server.reports.get())

    assert (kind, task_id) == ("fail", "wi_1")
    assert body["error"] == message
    assert body["retryable"] is False
    assert body["details"] == {"code": "output_too_large"}


async def test_connection_trouble_is_retried_everywhere(server: FakeServer) -> None:
    worker = make_worker(server)
    server.script("register", httpx.ConnectError("refused"), fail(503, "unavailable", "later"))
    server.script("poll", httpx.ReadTimeout("slow"), fail(502, None, None))
    server.script("complete", httpx.RemoteProtocolError("cut"))

    @worker.operation("acme.double")
    def double(inputs: dict[str, Any], step: Step) -> dict[str, Any]:
        return {"ok": True}

    async with running(worker):
        await server.tasks.put(task())
        report = await within(server.reports.get())

    assert report == ("complete", "wi_1", {"attempt": 1, "output": {"ok": True}})
    paths = server.paths()
    assert paths[:3] == ["POST /v1/workers"] * 3
    assert sum(p.endswith("/complete") for p in paths) == 2


async def test_a_refused_registration_ends_run(server: FakeServer) -> None:
    worker = make_worker(server)
    server.script("register", fail(401, "unauthorized", "Invalid API key."))
    worker.add_operation("acme.double", lambda inputs, step: {})

    with pytest.raises(FabricAuthError, match="Invalid API key"):
        await within(worker.run())


async def test_a_worker_the_server_forgot_registers_again(server: FakeServer) -> None:
    worker = make_worker(server)
    server.script("poll", fail(409, "worker_stopped", "Worker wrk_1 deregistered."))
    worker.add_operation("acme.double", lambda inputs, step: {"ok": True})

    async with running(worker):
        await server.tasks.put(task())
        await within(server.reports.get())

    assert server.registrations == 2
    assert worker.worker_id == f"{WORKER_ID}_2"
    assert any(p.startswith(f"POST /v1/workers/{WORKER_ID}_2/tasks/") for p in server.paths())


async def test_a_heartbeat_that_finds_the_worker_gone_registers_again() -> None:
    server = FakeServer(heartbeat_interval=0.01)
    worker = make_worker(server)
    started = asyncio.Event()
    cancelled = asyncio.Event()

    @worker.operation("acme.double")
    async def double(inputs: dict[str, Any], step: Step) -> dict[str, Any]:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return {}

    async with running(worker):
        await server.tasks.put(task())
        await within(started.wait())
        # The worker is full (no poll); the heartbeat learns the server forgot it.
        server.script("heartbeat", fail(404, "not_found", "Worker wrk_1 was not found."))
        await within(cancelled.wait())  # its task was handed back: stopped, not reported
        again = f"POST /v1/workers/{WORKER_ID}_2/tasks/poll"
        while again not in server.paths():
            await within(server.polls.get())

    assert server.registrations == 2
    assert server.reports.empty()


async def test_stop_drains_running_tasks_then_deregisters(server: FakeServer) -> None:
    worker = make_worker(server)
    started = threading.Event()
    release = threading.Event()
    seen_at_return: list[bool] = []

    @worker.operation("acme.double")
    def double(inputs: dict[str, Any], step: Step) -> dict[str, Any]:
        started.set()
        release.wait(DEADLINE)
        seen_at_return.append(step.cancelled)
        return {"drained": True}

    runner = asyncio.ensure_future(worker.run())
    await server.tasks.put(task())
    assert await within(asyncio.to_thread(started.wait, DEADLINE))
    worker.stop()
    polls = sum(p.endswith("/poll") for p in server.paths())
    release.set()
    await within(runner)

    assert seen_at_return == [False]  # a graceful stop lets the function finish in peace
    assert (await within(server.reports.get()))[:2] == ("complete", "wi_1")
    paths = server.paths()
    assert paths[-1] == f"DELETE /v1/workers/{WORKER_ID}"
    assert paths[-2] == f"POST /v1/workers/{WORKER_ID}/tasks/wi_1/complete"
    assert sum(p.endswith("/poll") for p in paths) == polls  # no poll after stop


async def test_a_second_stop_abandons_running_tasks(server: FakeServer) -> None:
    worker = make_worker(server)
    started = asyncio.Event()

    @worker.operation("acme.double")
    async def double(inputs: dict[str, Any], step: Step) -> dict[str, Any]:
        started.set()
        await asyncio.Event().wait()
        return {}

    runner = asyncio.ensure_future(worker.run())
    await server.tasks.put(task())
    await within(started.wait())
    worker.stop()
    worker.stop()
    await within(runner)

    assert server.deregistered.is_set()
    assert server.reports.empty()


async def test_running_tasks_are_abandoned_when_the_grace_period_ends(server: FakeServer) -> None:
    worker = make_worker(server)
    started = asyncio.Event()

    @worker.operation("acme.double")
    async def double(inputs: dict[str, Any], step: Step) -> dict[str, Any]:
        started.set()
        await asyncio.Event().wait()
        return {}

    runner = asyncio.ensure_future(worker.run())
    await server.tasks.put(task())
    await within(started.wait())
    worker.stop(grace=0.05)
    await within(runner)

    assert server.deregistered.is_set()
    assert server.reports.empty()


async def test_async_with_registers_on_entry_and_stops_on_exit(server: FakeServer) -> None:
    worker = make_worker(server)
    worker.add_operation("acme.double", lambda inputs, step: {"ok": 1})

    async with worker:
        assert worker.worker_id == WORKER_ID
        await server.tasks.put(task())
        await within(server.reports.get())

    assert server.deregistered.is_set()
    with pytest.raises(RuntimeError, match="runs once"):
        await worker.run()


async def test_the_sync_worker_runs_its_own_loop_until_stopped(server: FakeServer) -> None:
    loop = asyncio.get_running_loop()
    done = threading.Event()

    async def threaded_handler(request: httpx.Request) -> httpx.Response:
        # The worker's loop runs in another thread; the scripted server lives on this one.
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(server(request), loop))

    worker = Worker("http://fabric.test", "fab_k", transport=httpx.MockTransport(threaded_handler))
    worker.async_worker._backoff = Backoff(base=0.001, cap=0.002)

    @worker.operation("acme.double")
    def double(inputs: dict[str, Any], step: Step) -> dict[str, Any]:
        return {"doubled": inputs["n"] * 2}

    def run() -> None:
        try:
            worker.run()
        finally:
            done.set()

    thread = threading.Thread(target=run)
    thread.start()
    await server.tasks.put(task())
    report = await within(server.reports.get())
    worker.stop()
    assert await within(asyncio.to_thread(done.wait, DEADLINE))
    thread.join()

    assert report == ("complete", "wi_1", {"attempt": 1, "output": {"doubled": 42}})
    assert server.deregistered.is_set()


async def test_the_sync_worker_refuses_to_block_a_running_loop() -> None:
    worker = Worker(api_key="k")
    worker.add_operation("acme.a", lambda inputs, step: {})
    with pytest.raises(RuntimeError, match="use AsyncWorker"):
        worker.run()


def test_operations_are_checked_when_added() -> None:
    worker = AsyncWorker(api_key="k")
    fn: Callable[[dict[str, Any], Step], dict[str, Any]] = lambda inputs, step: {}  # noqa: E731
    for bad in ("resize", "Acme.resize", "ai.generate", "http.call", "acme resize"):
        with pytest.raises(ValueError):
            worker.add_operation(bad, fn)
    with pytest.raises(ValueError, match="concurrency"):
        worker.add_operation("acme.a", fn, concurrency=0)
    with pytest.raises(ValueError, match="timeout"):
        worker.add_operation("acme.a", fn, timeout=0)
    worker.add_operation("acme.a", fn)
    with pytest.raises(ValueError, match="already"):
        worker.add_operation("acme.a", fn)
    assert worker.operations == ["acme.a"]


async def test_a_worker_without_operations_does_not_start() -> None:
    with pytest.raises(ValueError, match="no operations"):
        await AsyncWorker(api_key="k").run()


def test_step_checks_its_arguments() -> None:
    sent: list[Any] = []
    step = Step(task(), sink=sent.append)
    step.progress(-0.5)
    step.log("")  # nothing to say: nothing sent
    with pytest.raises(ValueError):
        step.log("x", level="loud")
    with pytest.raises(TypeError):
        step.progress("half")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        step.progress(float("nan"))
    assert sent == [("progress", {"progress": 0.0, "message": None})]


def test_fabric_worker_loads_the_named_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "my_ops.py").write_text(
        "from fabric_platform import Worker\n"
        "worker = Worker(api_key='k')\n"
        "other = 42\n"
        "@worker.operation('acme.noop')\n"
        "def noop(inputs, step):\n"
        "    return {}\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "modules", dict(sys.modules))

    loaded = load_worker("my_ops:worker")
    assert isinstance(loaded, Worker)
    assert loaded.operations == ["acme.noop"]
    assert load_worker("my_ops") is loaded

    assert main(["my_ops:other"]) == 2
    assert "not a Worker" in capsys.readouterr().err
    assert main(["no_such_module:worker"]) == 2
    assert "cannot import no_such_module" in capsys.readouterr().err
    assert main(["my_ops:missing"]) == 2
    assert "no attribute missing" in capsys.readouterr().err
