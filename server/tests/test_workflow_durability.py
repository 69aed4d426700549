"""`kill -9` a worker process while ~20 runs are in flight: nothing is lost or done twice.

The API runs in-process without workers; `fabric-server worker` processes share its database,
as in a scaled-out deployment. The first worker is killed mid-flight (nodes running, delays
sleeping, approvals waiting); a second one takes over once the dead worker's leases expire.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from server_helpers import eventually
from sqlalchemy import select
from workflow_helpers import app_client, define, get_run, start

from fabric_server.engine.models import WorkItem
from fabric_server.events.models import Event
from fabric_server.services import Services
from fabric_server.testing import fast_settings
from fabric_server.usage.models import UsageRecord
from fabric_server.workflows.effects import WORK_KINDS
from fabric_server.workflows.models import WorkflowNodeState, WorkflowRun

LEASE_SECONDS = 1.5


class WorkerProcess:
    """`fabric-server worker` processes on the test database; none outlives the test."""

    def __init__(self, database_url: str, directory: Path) -> None:
        self.directory = directory
        self.processes: list[subprocess.Popen[bytes]] = []
        self.logs: list[IO[bytes]] = []
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FABRIC_")}
        self.env.update(
            FABRIC_DATABASE_URL=database_url,
            FABRIC_DATA_DIR=str(directory / "worker-data"),
            FABRIC_LEASE_SECONDS=str(LEASE_SECONDS),
            FABRIC_HEARTBEAT_SECONDS="0.3",
            FABRIC_WORKER_POLL_INTERVAL="0.05",
            FABRIC_WORKER_CONCURRENCY="8",
            FABRIC_RETRY_BASE_SECONDS="0.05",
            FABRIC_RETRY_MAX_SECONDS="0.2",
        )

    def start(self) -> subprocess.Popen[bytes]:
        log = (self.directory / f"worker-{len(self.processes) + 1}.log").open("wb")
        self.logs.append(log)
        process = subprocess.Popen(
            [sys.executable, "-m", "fabric_server", "worker"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        return process

    def output(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')}"
            for path in sorted(self.directory.glob("worker-*.log"))
        )

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)
        for log in self.logs:
            log.close()


@pytest.fixture
def workers(database_url: str, tmp_path: Path) -> Iterator[WorkerProcess]:
    processes = WorkerProcess(database_url, tmp_path)
    try:
        yield processes
    finally:
        processes.close()


def generate(key: str, template: str, delay_ms: int, **extra: Any) -> dict[str, Any]:
    config = {"prompt_template": template, "params": {"delay_ms": delay_ms}}
    return {"key": key, "operation": "ai.generate", "config": config, **extra}


async def define_workloads(api: httpx.AsyncClient) -> dict[str, str]:
    await define(
        api,
        [
            generate("think", "item {{context.item}}", 300),
            {
                "key": "tag",
                "operation": "text.transform_basic",
                "depends_on": ["think"],
                "config": {"operation": "upper"},
                "inputs": {"text": "$context.think.content"},
            },
        ],
        name="branch",
    )
    chain = await define(
        api,
        [
            {"key": "begin", "operation": "workflow.noop"},
            generate("draft", "draft {{context.n}}", 300, depends_on=["begin"]),
            {
                "key": "pause",
                "operation": "workflow.delay",
                "config": {"seconds": 1},
                "depends_on": ["draft"],
            },
            {
                "key": "finish",
                "operation": "text.transform_basic",
                "depends_on": ["pause"],
                "config": {"operation": "template", "template": "{{context.draft.content}} done"},
            },
        ],
        name="chain",
    )
    approval = await define(
        api,
        [
            generate("draft", "ask {{context.n}}", 200),
            {
                "key": "approve",
                "operation": "workflow.approval",
                "depends_on": ["draft"],
                "outputs": {"approved": "$context.approved"},
            },
            {
                "key": "publish",
                "operation": "text.transform_basic",
                "depends_on": ["approve"],
                "config": {
                    "operation": "template",
                    "template": "{{context.n}}:{{context.approved}}",
                },
            },
        ],
        name="approval",
    )
    fan = await define(
        api,
        [
            {
                "key": "fan",
                "operation": "workflow.fan_out",
                "config": {"branch_kind": "branch"},
                "inputs": {"items": "$context.items"},
            },
            {"key": "gather", "operation": "workflow.fan_in", "depends_on": ["fan"]},
        ],
        name="fan",
    )
    sleeps = await define(
        api,
        [
            {"key": "one", "operation": "workflow.delay", "config": {"seconds": 0.7}},
            {
                "key": "two",
                "operation": "workflow.delay",
                "config": {"seconds": 0.7},
                "depends_on": ["one"],
            },
        ],
        name="sleeps",
    )
    return {
        "chain": chain["id"],
        "approval": approval["id"],
        "fan": fan["id"],
        "sleeps": sleeps["id"],
    }


async def open_items(services: Services) -> Counter[str]:
    async with services.db.read() as session:
        rows = await session.scalars(
            select(WorkItem.status).where(
                WorkItem.kind.in_(WORK_KINDS), WorkItem.status.in_(("queued", "running"))
            )
        )
        return Counter(rows)


async def test_killed_worker_loses_no_run_and_completes_each_exactly_once(
    database_url: str, tmp_path: Path, workers: WorkerProcess
) -> None:
    settings = fast_settings(database_url, tmp_path / "api", run_workers=False)
    async with app_client(settings) as (api, services):
        ids = await define_workloads(api)
        first = workers.start()
        runs: dict[str, tuple[str, int]] = {}
        for n in range(20):
            kind = ("chain", "chain", "approval", "fan", "sleeps")[n % 5]
            context = {"n": n, "items": [n, n + 1, n + 2]} if kind == "fan" else {"n": n}
            run = await start(api, ids[kind], context)
            runs[run["id"]] = (kind, n)
        try:
            # Kill while work is in flight: leased items, future wake-ups, some nodes done.
            async def progress() -> tuple[int, Counter[str]]:
                async with services.db.read() as session:
                    done = await session.scalars(
                        select(Event.id).where(Event.kind == "workflow.node.completed")
                    )
                    return len(list(done)), await open_items(services)

            await eventually(
                progress, lambda p: p[0] >= 15 and p[1]["running"] >= 2 and p[1]["queued"] >= 2, 30
            )
            first.send_signal(signal.SIGKILL)
            assert first.wait(timeout=10) == -signal.SIGKILL
            assert (await open_items(services))["running"] >= 1  # leases held by the dead
            workers.start()

            for run_id, (kind, _) in runs.items():
                if kind == "approval":
                    await eventually(
                        lambda run_id=run_id: get_run(api, run_id),
                        lambda r: r["status"] == "waiting",
                        30,
                    )
                    path = f"/v1/workflow-runs/{run_id}/nodes/approve/resume"
                    assert (await api.post(path, json={"approved": True})).status_code == 200
            finals = {
                run_id: await eventually(
                    lambda run_id=run_id: get_run(api, run_id),
                    lambda r: r["status"] in ("completed", "failed", "cancelled"),
                    40,
                )
                for run_id in runs
            }
        except BaseException:
            print(workers.output())
            raise
        await check_exactly_once(services, runs, finals)
        assert await open_items(services) == Counter()


async def check_exactly_once(
    services: Services, runs: dict[str, tuple[str, int]], finals: dict[str, dict[str, Any]]
) -> None:
    for run_id, (kind, n) in runs.items():
        run = finals[run_id]
        assert run["status"] == "completed", run
        output = run["output"]
        if kind == "chain":
            assert output == {"finish": {"text": f"draft {n} done"}}
        elif kind == "approval":
            assert output == {"publish": {"text": f"{n}:true"}}
            assert run["context"]["approved"] is True
        elif kind == "fan":
            expected = [{"tag": {"text": f"ITEM {i}"}} for i in (n, n + 1, n + 2)]
            assert output == {"gather": {"items": expected, "count": 3}}
        else:
            assert output == {"two": {"waited_seconds": 0.7}}

    async with services.db.read() as session:
        all_runs = list(await session.scalars(select(WorkflowRun)))
        nodes = list(await session.scalars(select(WorkflowNodeState)))
        events = list(await session.scalars(select(Event).order_by(Event.seq)))
        usage = list(await session.scalars(select(UsageRecord)))
    assert len(all_runs) == 20 + 4 * 3  # the fan runs' children
    assert all(run.status == "completed" for run in all_runs)
    assert all(node.status == "completed" for node in nodes)

    by_run: dict[str | None, list[Event]] = defaultdict(list)
    for event in events:
        by_run[event.run_id].append(event)
    for run in all_runs:
        kinds = [e.kind for e in by_run[run.id]]
        counts = Counter(kinds)
        assert counts["workflow.run.created"] == 1
        assert counts["workflow.run.started"] == 1
        assert counts["workflow.run.completed"] == 1
        assert kinds[:3] == ["workflow.run.created", "workflow.run.queued", "workflow.run.started"]
        assert kinds[-1] == "workflow.run.completed"
        per_node: dict[str | None, list[str]] = defaultdict(list)
        for event in by_run[run.id]:
            if event.kind.startswith("workflow.node."):
                per_node[event.node_key].append(event.kind)
        assert len(per_node) == len(run.graph)
        for node_kinds in per_node.values():
            assert node_kinds[0] == "workflow.node.ready"
            assert node_kinds[-1] == "workflow.node.completed"
            assert node_kinds.count("workflow.node.ready") == 1
            assert node_kinds.count("workflow.node.completed") == 1

    ai_nodes = Counter((r.run_id, r.node_key) for r in usage)
    assert set(ai_nodes.values()) == {1}
    expected_ai = sum(1 for node in nodes if node.operation == "ai.generate")
    assert len(ai_nodes) == expected_ai
