"""The scaled-out deployment as a system: two API processes and two worker processes on one
PostgreSQL database. Jobs, workflow runs with approvals, schedules and webhooks are driven
through both APIs; every job and run completes exactly once, every event reaches an event
stream on each API, every webhook is delivered once, every schedule occurrence fires once
although both workers run a scheduler; then one worker is stopped (SIGTERM) and another
killed (SIGKILL) mid-load, and the rest still completes exactly once."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_helpers import ServerProcess, WorkerProcesses, eventually
from sqlalchemy import func, select
from webhook_receiver import Received, Receiver
from workflow_helpers import node

from fabric_server.db.database import Database
from fabric_server.events.models import Event
from fabric_server.schedules.models import ScheduleFiring
from fabric_server.settings import DEFAULT_ORGANIZATION_ID, to_async_url
from fabric_server.usage.models import UsageRecord

COMMON = {
    "FABRIC_LEASE_SECONDS": "2",
    "FABRIC_HEARTBEAT_SECONDS": "0.3",
    "FABRIC_WORKER_POLL_INTERVAL": "0.05",
    "FABRIC_WEBHOOK_DISPATCH_POLL_SECONDS": "0.05",
    "FABRIC_WEBHOOK_RETRY_SCHEDULE": "[0.05, 0.1, 0.2]",
    "FABRIC_SSE_POLL_SECONDS": "0.05",
    "FABRIC_SCHEDULER_POLL_SECONDS": "0.5",
}
DEADLINE = 60.0


@dataclass
class Cluster:
    apis: list[ServerProcess]
    workers: WorkerProcesses
    data_dir: Path

    def logs(self) -> str:
        return "\n".join(api.logs() for api in self.apis) + self.workers.logs()


@pytest.fixture
def cluster(database_url: str, tmp_path: Path) -> Iterator[Cluster]:
    if not database_url.startswith("postgresql"):
        pytest.skip("several processes on one database is the PostgreSQL deployment")
    data_dir = tmp_path / "data"
    settings = {**COMMON, "FABRIC_DATA_DIR": str(data_dir)}
    apis = [
        ServerProcess(database_url, tmp_path / f"api{i}", FABRIC_RUN_WORKERS="false", **settings)
        for i in (1, 2)
    ]
    for api in apis:
        api.directory.mkdir()
    workers = WorkerProcesses(database_url, tmp_path, **settings)
    try:
        apis[0].start()  # first: it migrates and writes the dev seed
        apis[1].start()
        workers.start()
        workers.start()
        yield Cluster(apis, workers, data_dir)
    finally:
        workers.close()
        for api in apis:
            api.close()


def _whole(receiver: Receiver) -> list[Received]:
    """The requests that arrived whole: one cut short by the killed worker is not a
    delivery (the delivery is sent again, whole)."""
    whole = []
    for request in list(receiver.requests):
        try:
            request.event
        except ValueError:
            continue
        whole.append(request)
    return whole


class Stream:
    """An organization event stream on one API, collecting `(id, kind)` of every frame."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.seen: list[tuple[str, str]] = []
        self.task: asyncio.Task[None] | None = None
        self.open = asyncio.Event()

    async def _read(self) -> None:
        timeout = httpx.Timeout(10, read=None)
        async with (
            httpx.AsyncClient(base_url=self.base_url, timeout=timeout) as client,
            client.stream("GET", "/v1/events/stream") as response,
        ):
            assert response.status_code == 200
            self.open.set()
            fields: dict[str, str] = {}
            async for line in response.aiter_lines():
                if not line:
                    if "id" in fields:
                        self.seen.append((fields["id"], fields.get("event", "")))
                    fields = {}
                elif not line.startswith(":"):
                    name, _, value = line.partition(": ")
                    fields[name] = value

    async def start(self) -> None:
        self.task = asyncio.create_task(self._read())
        await asyncio.wait_for(self.open.wait(), 10)

    def ids(self) -> set[str]:
        return {event_id for event_id, _ in self.seen}

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def _events(database_url: str, *kinds: str) -> list[Event]:
    db = Database(to_async_url(database_url))
    try:
        async with db.read() as session:
            return list(await session.scalars(select(Event).where(Event.kind.in_(kinds))))
    finally:
        await db.dispose()


async def _usage_per_job(database_url: str) -> Counter[str]:
    db = Database(to_async_url(database_url))
    try:
        async with db.read() as session:
            rows = await session.execute(
                select(UsageRecord.job_id, func.count()).group_by(UsageRecord.job_id)
            )
            return Counter({str(job_id): int(count) for job_id, count in rows.all() if job_id})
    finally:
        await db.dispose()


async def _minutely_schedules(clients: list[httpx.AsyncClient]) -> list[str]:
    """A schedule created through each API, due at the start of every minute."""
    nodes = [{"key": "tick", "operation": "workflow.noop"}]
    defined = await clients[0].post(
        "/v1/workflow-definitions", json={"name": "ticks", "nodes": nodes}
    )
    definition_id = defined.json()["data"]["id"]
    schedule_ids = []
    for client in clients:
        created = await client.post(
            f"/v1/workflow-definitions/{definition_id}/schedules",
            json={"cron_expression": "* * * * *"},
        )
        assert created.status_code == 201, created.text
        schedule_ids.append(created.json()["data"]["id"])
    return schedule_ids


async def _occurrences(database_url: str, schedule_ids: list[str]) -> Counter[tuple[str, Any]]:
    """How many times each (schedule, occurrence) fired."""
    db = Database(to_async_url(database_url))
    try:
        async with db.read() as session:
            rows = await session.execute(
                select(ScheduleFiring.schedule_id, ScheduleFiring.scheduled_for).where(
                    ScheduleFiring.schedule_id.in_(schedule_ids)
                )
            )
            return Counter((str(sid), when) for sid, when in rows.all())
    finally:
        await db.dispose()


async def _submit(clients: list[httpx.AsyncClient], count: int, **params: Any) -> list[str]:
    bodies = [
        {"modality": "text", "input": {"prompt": f"job {i}"}, "params": params}
        for i in range(count)
    ]
    answers = await asyncio.gather(
        *(clients[i % 2].post("/v1/jobs", json=body) for i, body in enumerate(bodies))
    )
    assert all(a.status_code == 201 for a in answers), [a.text for a in answers]
    return [a.json()["data"]["id"] for a in answers]


async def _all_finished(client: httpx.AsyncClient, job_ids: list[str]) -> None:
    async def statuses() -> set[str]:
        found = await asyncio.gather(*(client.get(f"/v1/jobs/{j}") for j in job_ids))
        return {f.json()["data"]["status"] for f in found}

    assert await eventually(statuses, lambda s: s == {"completed"}, DEADLINE) == {"completed"}


async def _approved_runs(clients: list[httpx.AsyncClient], count: int) -> list[str]:
    """Runs defined on one API, started on the other, approved on the first."""
    one, two = clients
    nodes = [
        {"key": "gate", "operation": "workflow.approval"},
        {"key": "after", "operation": "workflow.noop", "depends_on": ["gate"]},
    ]
    defined = await one.post("/v1/workflow-definitions", json={"name": "gated", "nodes": nodes})
    assert defined.status_code in (200, 201), defined.text
    definition_id = defined.json()["data"]["id"]
    run_ids = []
    for _ in range(count):
        created = await two.post(
            "/v1/workflow-runs", json={"workflow_definition_id": definition_id}
        )
        run_id = created.json()["data"]["id"]
        assert (await two.post(f"/v1/workflow-runs/{run_id}/start", json={})).status_code == 202
        run_ids.append(run_id)
    for run_id in run_ids:

        async def gate(run_id: str = run_id) -> dict[str, Any]:
            run: dict[str, Any] = (await one.get(f"/v1/workflow-runs/{run_id}")).json()["data"]
            return run

        await eventually(gate, lambda r: node(r, "gate")["status"] == "waiting", DEADLINE)
        resumed = await one.post(
            f"/v1/workflow-runs/{run_id}/nodes/gate/resume", json={"approved": True}
        )
        assert resumed.status_code == 200, resumed.text
    for run_id in run_ids:

        async def status(run_id: str = run_id) -> str:
            got = (await two.get(f"/v1/workflow-runs/{run_id}")).json()["data"]
            return str(got["status"])

        assert await eventually(status, lambda s: s == "completed", DEADLINE) == "completed"
    return run_ids


async def test_two_apis_and_two_workers_complete_everything_exactly_once(
    cluster: Cluster, database_url: str
) -> None:
    urls = [api.base_url for api in cluster.apis]
    streams = [Stream(url) for url in urls]
    with Receiver() as receiver:
        async with (
            httpx.AsyncClient(base_url=urls[0], timeout=30) as one,
            httpx.AsyncClient(base_url=urls[1], timeout=30) as two,
        ):
            clients = [one, two]
            try:
                for stream in streams:
                    await stream.start()
                hook = await two.post(
                    "/v1/webhooks",
                    json={
                        "organization_id": DEFAULT_ORGANIZATION_ID,
                        "url": receiver.url,
                        "events": ["job.completed", "workflow.run.*"],
                    },
                )
                assert hook.status_code == 201, hook.text

                schedules = await _minutely_schedules(clients)

                # Phase 1: both APIs, both workers up.
                jobs = await _submit(clients, 30)
                runs = await _approved_runs(clients, 3)
                await _all_finished(one, jobs)
                calm = {e.id for e in await _events(database_url, "job.completed")}

                async def delivered_calm() -> list[str]:
                    return [r.event["id"] for r in _whole(receiver) if r.event["id"] in calm]

                # With every worker up, each event is delivered exactly once.
                first_round = await eventually(
                    delivered_calm, lambda got: set(got) == calm, DEADLINE
                )
                assert sorted(first_round) == sorted(calm)

                # Phase 2: a worker stopped gracefully, another killed, mid-load.
                more = await _submit(clients, 30, delay_ms=300)
                first, second = cluster.workers.processes[:2]
                await eventually(
                    lambda: _events(database_url, "job.started"),
                    lambda started: len({e.job_id for e in started} & set(more)) >= 4,
                    DEADLINE,
                )
                first.send_signal(signal.SIGTERM)
                second.send_signal(signal.SIGKILL)
                cluster.workers.start()
                await _all_finished(two, more)

                completed = await _events(database_url, "job.completed", "workflow.run.completed")
                wanted = {e.id for e in completed}

                async def delivered() -> set[str]:
                    return {r.event["id"] for r in _whole(receiver)}

                await eventually(delivered, lambda got: got >= wanted, DEADLINE)

                async def streamed() -> list[set[str]]:
                    return [stream.ids() for stream in streams]

                await eventually(
                    streamed, lambda seen: all(ids >= wanted for ids in seen), DEADLINE
                )

                # Every worker runs a scheduler: each minute's occurrence fires once.
                fired = await eventually(
                    lambda: _occurrences(database_url, schedules),
                    lambda got: {sid for sid, _ in got} == set(schedules),
                    75,
                )
            except BaseException:
                print(cluster.logs())
                raise
            finally:
                for stream in streams:
                    await stream.stop()

    assert set(fired.values()) == {1}, fired
    all_jobs = set(jobs) | set(more)
    per_job = Counter(e.job_id for e in completed if e.kind == "job.completed")
    assert set(per_job) == all_jobs
    assert set(per_job.values()) == {1}
    per_run = Counter(e.run_id for e in completed if e.kind == "workflow.run.completed")
    assert set(per_run) == set(runs)
    assert set(per_run.values()) == {1}
    usage = await _usage_per_job(database_url)
    assert {job_id: usage[job_id] for job_id in all_jobs} == dict.fromkeys(all_jobs, 1)
    # One delivery per event. A delivery a killed worker was making when it died may arrive
    # again (webhooks are at least once: receivers dedupe by `X-Fabric-Delivery`), but it is
    # the same delivery, never a second one.
    deliveries: dict[str, set[str]] = {}
    for request in _whole(receiver):
        deliveries.setdefault(request.event["id"], set()).add(request.headers["x-fabric-delivery"])
    assert {event_id: len(ids) for event_id, ids in deliveries.items() if event_id in wanted} == (
        dict.fromkeys(wanted, 1)
    )
