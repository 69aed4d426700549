"""Code workers end to end: real ``fabric-worker`` processes against a real server.

Each test writes a module of operations, starts workers with the ``fabric-worker`` command,
and runs workflows whose nodes those workers serve. The operations talk back to the test
through marker files (started, cancelled, released), so every wait is on something observed,
bounded by a deadline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

from fabric_platform import FabricClient
from fabric_server.testing import LiveServer, fast_settings

DEADLINE = 30.0
FABRIC_WORKER = str(Path(sys.executable).parent / "fabric-worker")

OPERATIONS = '''
import asyncio
import os
import time
from pathlib import Path

from fabric_platform import OperationError, Worker

MARKERS = Path(os.environ["FABRIC_TEST_MARKERS"])
worker = Worker(poll_wait_seconds=2, shutdown_grace=20)


def mark(name):
    # Whole or not at all: the test may read the marker the moment it appears.
    partial = MARKERS / (".partial-" + name)
    partial.write_text(str(os.getpid()))
    os.replace(partial, MARKERS / name)


def wait_for_release(step, name):
    """Block until the test releases `name` (True) or the task is cancelled (False)."""
    while not (MARKERS / ("release-" + name)).exists():
        if step.cancelled:
            mark("cancelled-" + name)
            return False
        time.sleep(0.01)
    return True


@worker.operation("acme.double", concurrency=2)
def double(inputs, step):
    step.progress(0.5, "halfway")
    step.log("doubling " + str(inputs["n"]))
    return {"doubled": inputs["n"] * 2, "label": step.config.get("label")}


@worker.operation("acme.adouble")
async def adouble(inputs, step):
    await asyncio.sleep(0)
    step.progress(1.0, "done")
    return {"doubled": inputs["n"] * 2}


@worker.operation("acme.flaky")
def flaky(inputs, step):
    if step.node_attempt == 1:
        raise RuntimeError("the first attempt always fails")
    return {"attempt": step.node_attempt}


@worker.operation("acme.refuse")
def refuse(inputs, step):
    raise OperationError("this input is never acceptable", details={"n": inputs.get("n")})


@worker.operation("acme.sleepy", timeout=0.3)
async def sleepy(inputs, step):
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        mark("cancelled-sleepy")
        raise


@worker.operation("acme.block")
def block(inputs, step):
    name = step.config["name"]
    mark("started-" + name + "-" + str(os.getpid()))
    if not wait_for_release(step, name):
        return {"cancelled": True}
    return {"pid": os.getpid(), "task_attempt": step.attempt, "key": step.idempotency_key}


@worker.operation("acme.ablock")
async def ablock(inputs, step):
    name = step.config["name"]
    mark("started-" + name + "-" + str(os.getpid()))
    try:
        while not (MARKERS / ("release-" + name)).exists():
            await asyncio.sleep(0.01)
    except asyncio.CancelledError:
        mark("cancelled-" + name)
        raise
    return {"pid": os.getpid()}
'''


def wait_until(check: Callable[[], Any], what: str, timeout: float = DEADLINE) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


class Workers:
    """Starts ``fabric-worker`` processes on the test's operations module; kills leftovers."""

    def __init__(self, base_url: str, root: Path) -> None:
        self.base_url = base_url
        self.root = root
        self.markers = root / "markers"
        self.markers.mkdir(parents=True)
        (root / "e2e_ops.py").write_text(OPERATIONS)
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, name: str) -> subprocess.Popen[bytes]:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("FABRIC_API_KEY", "FABRIC_ORGANIZATION_ID")
        }
        env.update(
            FABRIC_BASE_URL=self.base_url,
            FABRIC_TEST_MARKERS=str(self.markers),
            PYTHONUNBUFFERED="1",
        )
        log = (self.root / f"{name}.log").open("wb")
        process = subprocess.Popen(
            [FABRIC_WORKER, "e2e_ops:worker", "--name", name, "--log-level", "debug"],
            cwd=self.root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.processes.append(process)
        return process

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")

    def started(self, name: str) -> list[Path]:
        return sorted(self.markers.glob(f"started-{name}-*"))

    def release(self, name: str) -> None:
        (self.markers / f"release-{name}").write_text("")

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=DEADLINE)


@pytest.fixture
def live(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    settings = fast_settings(
        database_url,
        tmp_path,
        worker_task_lease_seconds=1.0,
        worker_heartbeat_seconds=0.3,
    )
    with LiveServer(settings) as server:
        yield server


@pytest.fixture
def workers(live: LiveServer, tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(live.base_url, tmp_path / "workers")
    try:
        yield pool
    finally:
        pool.stop_all()


@pytest.fixture
def fabric(live: LiveServer) -> Iterator[FabricClient]:
    with FabricClient(base_url=live.base_url) as client:
        yield client


def online(fabric: FabricClient, name: str) -> Optional[dict[str, Any]]:
    for worker in fabric.iter_workers(status="online"):
        if worker["name"] == name:
            return dict(worker)
    return None


def wait_online(fabric: FabricClient, name: str) -> dict[str, Any]:
    worker: dict[str, Any] = wait_until(lambda: online(fabric, name), f"worker {name} online")
    return worker


def start_run(fabric: FabricClient, name: str, nodes: list[dict[str, Any]], **context: Any) -> str:
    workflow_id = fabric.upsert_workflow(name=name, nodes=nodes)
    return fabric.run_workflow(workflow_id, context=context)


def finished(fabric: FabricClient, run_id: str) -> dict[str, Any]:
    run = fabric.wait_for_run(run_id, poll_interval=0.05, timeout=DEADLINE)
    return dict(run)


def node_of(fabric: FabricClient, run_id: str, key: str) -> dict[str, Any]:
    (node,) = [n for n in fabric.run_log(run_id)["nodes"] if n["node_key"] == key]
    return dict(node)


def events_of(fabric: FabricClient, run_id: str, kind: str) -> list[dict[str, Any]]:
    return [dict(e) for e in fabric.run_log(run_id)["events"] if e["kind"] == kind]


def test_sync_and_async_operations_run_nodes_through_their_bindings(
    fabric: FabricClient, workers: Workers
) -> None:
    workers.start("w1")
    wait_online(fabric, "w1")
    run_id = start_run(
        fabric,
        "double-twice",
        [
            {
                "key": "double",
                "operation": "acme.double",
                "inputs": {"n": "$context.n"},
                "config": {"label": "run {{context.label}}"},
                "outputs": {"doubled": "$context.once", "label": "$context.label_seen"},
            },
            {
                "key": "again",
                "type": "worker.task",
                "config": {"operation": "acme.adouble"},
                "depends_on": ["double"],
                "inputs": {"n": "$context.once"},
                "outputs": {"doubled": "$context.twice"},
            },
        ],
        n=21,
        label="one",
    )

    run = finished(fabric, run_id)

    assert run["status"] == "completed", run
    assert run["context"]["once"] == 42
    assert run["context"]["twice"] == 84
    assert run["context"]["label_seen"] == "run one"
    progress = events_of(fabric, run_id, "workflow.node.progress")
    assert [
        (e["node_key"], e["payload"]["progress"], e["payload"]["message"]) for e in progress
    ] == [
        ("double", 0.5, "halfway"),
        ("again", 1.0, "done"),
    ]
    (line,) = events_of(fabric, run_id, "workflow.node.log")
    assert (line["node_key"], line["payload"]["message"]) == ("double", "doubling 21")
    (claimed, _) = events_of(fabric, run_id, "workflow.node.claimed")
    assert claimed["payload"]["worker_name"] == "w1"


def test_an_exception_is_retried_and_an_operation_error_is_final(
    fabric: FabricClient, workers: Workers
) -> None:
    workers.start("w1")
    wait_online(fabric, "w1")
    flaky = start_run(
        fabric,
        "flaky",
        [{"key": "f", "operation": "acme.flaky", "policy": {"max_retries": 2}}],
    )
    refused = start_run(
        fabric,
        "refused",
        [{"key": "r", "operation": "acme.refuse", "inputs": {"n": "$context.n"}}],
        n=7,
    )

    assert finished(fabric, flaky)["status"] == "completed"
    node = node_of(fabric, flaky, "f")
    assert node["attempts"] == 2
    assert node["output"] == {"attempt": 2}
    (retrying,) = events_of(fabric, flaky, "workflow.node.retrying")
    assert "RuntimeError: the first attempt always fails" in str(retrying["payload"]["error"])

    assert finished(fabric, refused)["status"] == "failed"
    node = node_of(fabric, refused, "r")
    assert "this input is never acceptable" in str(node["error"])
    assert node["attempts"] == 1


def test_a_function_past_its_time_limit_is_cancelled_and_the_node_fails(
    fabric: FabricClient, workers: Workers
) -> None:
    workers.start("w1")
    wait_online(fabric, "w1")
    run_id = start_run(
        fabric, "sleepy", [{"key": "s", "operation": "acme.sleepy", "policy": {"max_retries": 0}}]
    )

    assert finished(fabric, run_id)["status"] == "failed"
    assert "timed out after 0.3 s" in str(node_of(fabric, run_id, "s")["error"])
    wait_until(lambda: (workers.markers / "cancelled-sleepy").exists(), "the coroutine cancelled")


@pytest.mark.parametrize("operation", ["acme.block", "acme.ablock"])
def test_cancelling_the_run_reaches_the_running_function(
    fabric: FabricClient, workers: Workers, operation: str
) -> None:
    workers.start("w1")
    wait_online(fabric, "w1")
    run_id = start_run(
        fabric, "cancel-me", [{"key": "b", "operation": operation, "config": {"name": "c"}}]
    )
    wait_until(lambda: workers.started("c"), "the function to start")

    fabric.cancel_run(run_id)

    wait_until(lambda: (workers.markers / "cancelled-c").exists(), "the function to be told")
    assert fabric.get_run(run_id)["status"] == "cancelled"
    # Nothing was reported for it: the worker says so in its own words at most.
    assert "outcome dropped" not in workers.log("w1")


def test_a_fan_out_spreads_over_two_workers(fabric: FabricClient, workers: Workers) -> None:
    workers.start("w1")
    workers.start("w2")
    wait_online(fabric, "w1")
    wait_online(fabric, "w2")
    # acme.block runs one task at a time per worker: two at once need both workers.
    nodes = [{"key": key, "operation": "acme.block", "config": {"name": key}} for key in ("a", "b")]
    run_id = start_run(fabric, "fan-out", nodes)
    wait_until(lambda: workers.started("a") and workers.started("b"), "both tasks to start")
    pids = {workers.started(key)[0].read_text() for key in ("a", "b")}
    workers.release("a")
    workers.release("b")

    assert finished(fabric, run_id)["status"] == "completed"
    assert len(pids) == 2
    assert {str(node_of(fabric, run_id, k)["output"]["pid"]) for k in ("a", "b")} == pids


def test_sigterm_lets_the_running_task_finish_then_deregisters(
    fabric: FabricClient, workers: Workers
) -> None:
    process = workers.start("w1")
    worker = wait_online(fabric, "w1")
    run_id = start_run(
        fabric, "drain", [{"key": "d", "operation": "acme.block", "config": {"name": "d"}}]
    )
    wait_until(lambda: workers.started("d"), "the task to start")

    process.send_signal(signal.SIGTERM)
    wait_until(lambda: "stopping" in workers.log("w1"), "the worker to start draining")
    assert process.poll() is None  # it waits for its task
    workers.release("d")

    assert process.wait(timeout=DEADLINE) == 0
    assert finished(fabric, run_id)["status"] == "completed"
    assert fabric.get_worker(worker["id"])["status"] == "offline"


def test_a_killed_worker_s_task_completes_once_elsewhere(
    fabric: FabricClient, workers: Workers
) -> None:
    doomed = workers.start("doomed")
    wait_online(fabric, "doomed")
    run_id = start_run(
        fabric, "survive", [{"key": "k", "operation": "acme.block", "config": {"name": "k"}}]
    )
    (first,) = wait_until(lambda: workers.started("k"), "the task to start on the doomed one")
    assert first.read_text() == str(doomed.pid)

    doomed.kill()  # SIGKILL: no drain, no deregistration
    doomed.wait(timeout=DEADLINE)
    survivor = workers.start("survivor")
    # Once the dead worker's lease expires, the survivor takes the same node attempt.
    wait_until(lambda: len(workers.started("k")) == 2, "the task to start again")
    workers.release("k")

    assert finished(fabric, run_id)["status"] == "completed"
    node = node_of(fabric, run_id, "k")
    assert node["output"]["pid"] == survivor.pid
    assert node["output"]["task_attempt"] == 2
    assert node["output"]["key"] == f"{run_id}:k:1"  # the same idempotency key
    assert len(events_of(fabric, run_id, "workflow.node.completed")) == 1
