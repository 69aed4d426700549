"""The worker: retries, giving up, leases, graceful stop; and jobs run end to end in-process."""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.db.database import Database
from fabric_server.db.types import utcnow
from fabric_server.engine.handler import PermanentError, RetryingHandler
from fabric_server.engine.models import WorkItem
from fabric_server.engine.queue import RetryPolicy, WorkQueue
from fabric_server.engine.worker import Worker
from fabric_server.events.models import Event
from fabric_server.services import Services
from fabric_server.settings import to_async_url
from fabric_server.usage.models import UsageRecord

KIND = "test.work"
LEASE = 5.0


class ShiftedClock:
    """Real time plus an offset the test can move forward to expire leases at once."""

    def __init__(self) -> None:
        self.offset = dt.timedelta()

    def __call__(self) -> dt.datetime:
        return utcnow() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += dt.timedelta(seconds=seconds)


class ScriptedHandler(RetryingHandler):
    """Fails its first `flaky` executions, optionally waits on a gate, then completes."""

    def __init__(
        self,
        db: Database,
        queue: WorkQueue,
        *,
        flaky: int = 0,
        permanent: bool = False,
        gate: asyncio.Event | None = None,
        work_seconds: float = 0.0,
    ) -> None:
        super().__init__(db, queue)
        self.flaky = flaky
        self.permanent = permanent
        self.gate = gate
        self.work_seconds = work_seconds
        self.executions: list[int] = []  # the attempt number of every execution
        self.retries: list[str] = []
        self.failures: list[tuple[str, str]] = []
        self.cancelled = 0
        self.in_flight = 0
        self.max_in_flight = 0

    async def execute(self, item: WorkItem) -> None:
        self.executions.append(item.attempts)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.gate is not None:
                await self.gate.wait()
            if self.work_seconds:
                await asyncio.sleep(self.work_seconds)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.in_flight -= 1
        if self.permanent:
            raise PermanentError("bad input")
        if len(self.executions) <= self.flaky:
            raise RuntimeError(f"flaky {len(self.executions)}")
        async with self.db.write() as session:
            await self.queue.complete(session, item)

    async def on_retry(self, session: AsyncSession, item: WorkItem, error: str) -> None:
        self.retries.append(error)

    async def on_failure(self, session: AsyncSession, item: WorkItem, error: str) -> None:
        self.failures.append((item.id, error))


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(to_async_url(database_url))
    yield database
    await database.dispose()


@pytest.fixture
def clock() -> ShiftedClock:
    return ShiftedClock()


@pytest.fixture
def queue(db: Database, clock: ShiftedClock) -> WorkQueue:
    return WorkQueue(db, lease_seconds=LEASE, retry=RetryPolicy(0.01, 0.02), clock=clock)


StartWorker = Callable[..., Worker]


@pytest.fixture
async def start_worker(queue: WorkQueue) -> AsyncIterator[StartWorker]:
    workers: list[Worker] = []

    def start(handler: RetryingHandler, *, on: WorkQueue | None = None, **options: Any) -> Worker:
        options = {"poll_interval": 0.02, "heartbeat_interval": 0.05, **options}
        worker = Worker(on or queue, {KIND: handler}, **options)
        worker.start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        await worker.stop()


async def enqueue(queue: WorkQueue, **kwargs: Any) -> WorkItem:
    async with queue.db.write() as session:
        item = await queue.enqueue(session, KIND, **kwargs)
    return item


async def load(db: Database, item_id: str) -> WorkItem:
    async with db.read() as session:
        item = await session.get(WorkItem, item_id)
    assert item is not None
    return item


async def eventually(
    check: Callable[[], bool | Awaitable[bool]], what: str, timeout: float = 10
) -> None:
    """Poll `check` (plain or async) until it holds, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if await result if inspect.isawaitable(result) else result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def wait_status(db: Database, item_id: str, status: str) -> WorkItem:
    async def reached() -> bool:
        return (await load(db, item_id)).status == status

    await eventually(reached, f"work item {item_id} to be {status}")
    return await load(db, item_id)


async def test_transient_errors_are_retried_until_success(
    queue: WorkQueue, start_worker: StartWorker
) -> None:
    handler = ScriptedHandler(queue.db, queue, flaky=2)
    start_worker(handler)
    item = await enqueue(queue, max_attempts=3)

    stored = await wait_status(queue.db, item.id, "done")

    assert handler.executions == [1, 2, 3]
    assert handler.retries == ["RuntimeError: flaky 1", "RuntimeError: flaky 2"]
    assert handler.failures == []
    assert (stored.attempts, stored.last_error, stored.lease_owner) == (3, None, None)


async def test_gives_up_after_max_attempts_and_records_the_failure_once(
    queue: WorkQueue, start_worker: StartWorker
) -> None:
    handler = ScriptedHandler(queue.db, queue, flaky=100)
    start_worker(handler)
    item = await enqueue(queue, max_attempts=3)

    stored = await wait_status(queue.db, item.id, "failed")

    assert handler.executions == [1, 2, 3]
    assert len(handler.retries) == 2
    assert handler.failures == [(item.id, "RuntimeError: flaky 3")]
    assert stored.last_error == "RuntimeError: flaky 3"
    assert await queue.claim("someone-else", [KIND], 10) == []


async def test_permanent_error_fails_without_retrying(
    queue: WorkQueue, start_worker: StartWorker
) -> None:
    handler = ScriptedHandler(queue.db, queue, permanent=True)
    start_worker(handler)
    item = await enqueue(queue, max_attempts=5)

    stored = await wait_status(queue.db, item.id, "failed")

    assert handler.executions == [1]
    assert handler.retries == []
    assert handler.failures == [(item.id, "bad input")]
    assert stored.last_error == "bad input"


async def test_item_of_a_crashed_worker_runs_again_after_its_lease(
    queue: WorkQueue, clock: ShiftedClock, start_worker: StartWorker
) -> None:
    item = await enqueue(queue, max_attempts=3)
    await queue.claim("crashed-worker", [KIND], 1)  # then it never heartbeats again
    handler = ScriptedHandler(queue.db, queue)
    start_worker(handler)

    clock.advance(LEASE + 1)
    stored = await wait_status(queue.db, item.id, "done")

    assert handler.executions == [2]
    assert stored.attempts == 2


async def test_item_interrupted_too_many_times_is_given_up_without_running(
    queue: WorkQueue, clock: ShiftedClock, start_worker: StartWorker
) -> None:
    item = await enqueue(queue, max_attempts=1)
    await queue.claim("crashed-worker", [KIND], 1)
    handler = ScriptedHandler(queue.db, queue)
    start_worker(handler)

    clock.advance(LEASE + 1)
    stored = await wait_status(queue.db, item.id, "failed")

    assert handler.executions == []
    assert handler.failures == [(item.id, "the work was interrupted too many times")]
    assert stored.attempts == 2


async def test_graceful_stop_releases_an_unfinished_item_for_the_next_worker(
    queue: WorkQueue, start_worker: StartWorker
) -> None:
    gate = asyncio.Event()
    handler = ScriptedHandler(queue.db, queue, gate=gate)
    worker = start_worker(handler, shutdown_grace=0.05)
    item = await enqueue(queue)
    await wait_status(queue.db, item.id, "running")
    await eventually(lambda: bool(handler.executions), "the handler to start")

    await worker.stop()

    stored = await load(queue.db, item.id)
    assert handler.cancelled == 1
    assert (stored.status, stored.lease_owner, stored.lease_expires_at) == ("queued", None, None)
    assert stored.available_at <= queue.clock()
    assert stored.attempts == 0  # a graceful hand-back does not use up an attempt

    gate.set()
    start_worker(handler)
    await wait_status(queue.db, item.id, "done")
    assert handler.executions == [1, 1]


async def test_graceful_stop_lets_an_item_finish_within_the_grace_period(
    queue: WorkQueue, start_worker: StartWorker
) -> None:
    gate = asyncio.Event()
    handler = ScriptedHandler(queue.db, queue, gate=gate)
    worker = start_worker(handler, shutdown_grace=10)
    item = await enqueue(queue)
    await eventually(lambda: bool(handler.executions), "the handler to start")

    asyncio.get_running_loop().call_later(0.2, gate.set)
    await worker.stop()

    assert handler.cancelled == 0
    assert (await load(queue.db, item.id)).status == "done"


async def test_a_lost_lease_abandons_the_running_handler(
    queue: WorkQueue, start_worker: StartWorker
) -> None:
    handler = ScriptedHandler(queue.db, queue, gate=asyncio.Event())
    start_worker(handler)
    item = await enqueue(queue)
    await eventually(lambda: bool(handler.executions), "the handler to start")

    # Another worker takes the item over (as after a reclaim).
    async with queue.db.write() as session:
        await session.execute(
            update(WorkItem)
            .where(WorkItem.id == item.id)
            .values(lease_owner="thief", attempts=WorkItem.attempts + 1)
        )
    await eventually(lambda: bool(handler.cancelled), "the heartbeat to cancel the handler")

    stored = await load(queue.db, item.id)
    assert (stored.status, stored.lease_owner) == ("running", "thief")


async def test_concurrency_bounds_the_items_run_at_once(
    queue: WorkQueue, start_worker: StartWorker
) -> None:
    handler = ScriptedHandler(queue.db, queue, work_seconds=0.02)
    start_worker(handler, concurrency=2)
    items = [await enqueue(queue) for _ in range(6)]

    for item in items:
        await wait_status(queue.db, item.id, "done")

    assert len(handler.executions) == 6
    assert handler.max_in_flight == 2


async def test_heartbeats_keep_a_long_item_from_being_reclaimed(
    db: Database, start_worker: StartWorker
) -> None:
    # Real time is the subject: the item runs for three lease lengths while a second worker
    # keeps polling; the heartbeat must keep the lease alive the whole time.
    short = WorkQueue(db, lease_seconds=0.3, retry=RetryPolicy(0.01, 0.02))
    handler = ScriptedHandler(db, short, work_seconds=1.0)
    start_worker(handler, on=short)
    item = await enqueue(short)
    await eventually(lambda: bool(handler.executions), "the first worker to start it")
    start_worker(handler, on=short)

    stored = await wait_status(db, item.id, "done")

    assert handler.executions == [1]
    assert stored.attempts == 1


# Jobs through the real app (in-process worker).


async def run_job(client: httpx.AsyncClient, params: dict[str, Any]) -> dict[str, Any]:
    body = {"modality": "text", "input": {"prompt": "hello fabric"}, "params": params}
    created = await client.post("/v1/jobs", json=body)
    assert created.status_code == 201, created.text
    job_id = created.json()["data"]["id"]
    job: dict[str, Any] = {}

    async def finished() -> bool:
        nonlocal job
        job = (await client.get(f"/v1/jobs/{job_id}")).json()["data"]
        return job["status"] in ("completed", "failed")

    await eventually(finished, f"job {job_id} to finish")
    return job


async def job_event_kinds(services: Services, job_id: str) -> list[str]:
    async with services.db.read() as session:
        rows = await session.scalars(
            select(Event.kind).where(Event.job_id == job_id).order_by(Event.seq)
        )
        return list(rows)


async def usage_count(services: Services, job_id: str) -> int:
    async with services.db.read() as session:
        count = await session.scalar(
            select(func.count()).select_from(UsageRecord).where(UsageRecord.job_id == job_id)
        )
    return int(count or 0)


async def test_failing_job_keeps_its_error_and_emits_one_failed_event(
    client: httpx.AsyncClient, services: Services
) -> None:
    job = await run_job(client, {"fail": "the model refused"})

    assert job["status"] == "failed"
    assert job["error"] == "the model refused"
    assert job["output"] is None
    assert job["completed_at"] is not None
    assert await job_event_kinds(services, job["id"]) == [
        "job.created",
        "job.started",
        "job.failed",
    ]
    assert await usage_count(services, job["id"]) == 0


async def test_job_completes_once_with_one_usage_record(
    client: httpx.AsyncClient, services: Services
) -> None:
    job = await run_job(client, {"delay_ms": 50})

    assert job["status"] == "completed"
    assert job["output"]["text"] == "hello fabric"
    assert job["attempts"] == 1
    assert job["error"] is None
    kinds = await job_event_kinds(services, job["id"])
    assert kinds == ["job.created", "job.started", "job.completed"]
    assert await usage_count(services, job["id"]) == 1
    usage = (await client.get(f"/v1/jobs/{job['id']}/usage")).json()["data"]
    assert len(usage["records"]) == 1
    assert usage["records"][0]["provider_id"] == "echo"
    assert usage["output_tokens"] == 2

    # The SSE replay serves the same history and ends at the terminal event.
    stream = await client.get(f"/v1/jobs/{job['id']}/events")
    assert stream.headers["content-type"].startswith("text/event-stream")
    streamed = [
        line[len("event: ") :] for line in stream.text.splitlines() if line.startswith("event: ")
    ]
    assert streamed == kinds
