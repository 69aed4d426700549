"""The work queue against a real database: ordering, leases, fencing, backoff, concurrency."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy import select

from fabric_server.db.database import Database
from fabric_server.db.types import utcnow
from fabric_server.engine.models import WorkItem
from fabric_server.engine.queue import LeaseLost, RetryPolicy, WorkQueue
from fabric_server.settings import to_async_url

KIND = "test.work"
LEASE = 30.0


class FakeClock:
    """A clock the test moves by hand, so lease expiry and backoff need no waiting."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(to_async_url(database_url))
    yield database
    await database.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def queue(db: Database, clock: FakeClock) -> WorkQueue:
    return WorkQueue(db, lease_seconds=LEASE, retry=RetryPolicy(2.0, 10.0), clock=clock)


async def enqueue(queue: WorkQueue, **kwargs: object) -> WorkItem:
    async with queue.db.write() as session:
        item = await queue.enqueue(session, KIND, **kwargs)  # type: ignore[arg-type]
    return item


async def load(db: Database, item_id: str) -> WorkItem:
    async with db.read() as session:
        item = await session.get(WorkItem, item_id)
    assert item is not None
    return item


async def test_claims_higher_priority_first_then_oldest(queue: WorkQueue, clock: FakeClock) -> None:
    ids: dict[str, str] = {}
    for name, priority in [("low-old", 0), ("high-new", 5), ("low-new", 0), ("mid", 1)]:
        ids[name] = (await enqueue(queue, priority=priority)).id
        clock.advance(1)

    one_by_one = [(await queue.claim("w", [KIND], 1))[0].id for _ in range(2)]
    rest = [item.id for item in await queue.claim("w", [KIND], 10)]

    order = [ids[name] for name in ("high-new", "mid", "low-old", "low-new")]
    assert one_by_one + rest == order


async def test_claim_only_takes_requested_kinds(queue: WorkQueue) -> None:
    async with queue.db.write() as session:
        other = await queue.enqueue(session, "other.work")
    assert await queue.claim("w", [KIND], 10) == []
    assert [i.id for i in await queue.claim("w", ["other.work"], 10)] == [other.id]


async def test_item_is_not_claimed_before_available_at(queue: WorkQueue, clock: FakeClock) -> None:
    item = await enqueue(queue, delay_seconds=60)

    assert await queue.claim("w", [KIND], 10) == []
    clock.advance(59)
    assert await queue.claim("w", [KIND], 10) == []
    clock.advance(1)
    claimed = await queue.claim("w", [KIND], 10)

    assert [i.id for i in claimed] == [item.id]


async def test_leased_item_is_not_claimed_again(queue: WorkQueue, clock: FakeClock) -> None:
    item = await enqueue(queue)
    [claimed] = await queue.claim("a", [KIND], 10)
    assert claimed.id == item.id
    assert claimed.status == "running"
    assert claimed.lease_owner == "a"
    assert claimed.attempts == 1
    assert claimed.lease_expires_at == clock.now + dt.timedelta(seconds=LEASE)

    clock.advance(LEASE - 1)
    assert await queue.claim("b", [KIND], 10) == []
    assert await queue.claim("a", [KIND], 10) == []


async def test_expired_lease_is_reclaimed_by_another_owner(
    queue: WorkQueue, clock: FakeClock
) -> None:
    item = await enqueue(queue)
    await queue.claim("a", [KIND], 10)

    clock.advance(LEASE + 0.001)
    [reclaimed] = await queue.claim("b", [KIND], 10)

    assert reclaimed.id == item.id
    assert reclaimed.lease_owner == "b"
    assert reclaimed.attempts == 2
    stored = await load(queue.db, item.id)
    assert (stored.status, stored.lease_owner, stored.attempts) == ("running", "b", 2)


async def test_heartbeat_extends_only_own_leases_and_reports_lost_ones(
    queue: WorkQueue, clock: FakeClock
) -> None:
    mine = await enqueue(queue)
    await queue.claim("a", [KIND], 1)
    theirs = await enqueue(queue)
    [b_claim] = await queue.claim("b", [KIND], 1)

    clock.advance(LEASE - 1)
    lost = await queue.heartbeat("a", [mine.id, theirs.id])

    assert lost == {theirs.id}
    assert (await load(queue.db, mine.id)).lease_expires_at == clock.now + dt.timedelta(
        seconds=LEASE
    )
    # b's lease was not touched by a's heartbeat.
    assert (await load(queue.db, theirs.id)).lease_expires_at == b_claim.lease_expires_at

    # Past b's (unextended) lease, b's item is reclaimable; a's extended lease still holds.
    clock.advance(2)
    assert [i.id for i in await queue.claim("c", [KIND], 10)] == [theirs.id]
    assert await queue.heartbeat("b", [theirs.id]) == {theirs.id}
    assert await queue.heartbeat("a", []) == set()


async def test_heartbeat_reports_finished_items_as_lost(queue: WorkQueue) -> None:
    await enqueue(queue)
    [item] = await queue.claim("a", [KIND], 1)
    async with queue.db.write() as session:
        await queue.complete(session, item)

    assert await queue.heartbeat("a", [item.id]) == {item.id}


async def _complete(queue: WorkQueue, item: WorkItem) -> None:
    async with queue.db.write() as session:
        await queue.complete(session, item)


async def _fail(queue: WorkQueue, item: WorkItem) -> None:
    async with queue.db.write() as session:
        await queue.fail(session, item, "boom")


async def _retry_later(queue: WorkQueue, item: WorkItem) -> None:
    async with queue.db.write() as session:
        await queue.retry_later(session, item, "transient")


FINISHERS: dict[str, Callable[[WorkQueue, WorkItem], Awaitable[None]]] = {
    "complete": _complete,
    "fail": _fail,
    "retry_later": _retry_later,
}


@pytest.mark.parametrize("finish", sorted(FINISHERS))
async def test_old_owner_cannot_finish_a_reclaimed_item(
    queue: WorkQueue, clock: FakeClock, finish: str
) -> None:
    await enqueue(queue)
    [stale] = await queue.claim("a", [KIND], 1)
    clock.advance(LEASE + 1)
    [current] = await queue.claim("b", [KIND], 1)

    with pytest.raises(LeaseLost):
        await FINISHERS[finish](queue, stale)

    stored = await load(queue.db, stale.id)
    assert (stored.status, stored.lease_owner, stored.last_error) == ("running", "b", None)
    await _complete(queue, current)
    assert (await load(queue.db, stale.id)).status == "done"


async def test_stale_handle_of_the_same_owner_cannot_finish_a_reclaimed_item(
    queue: WorkQueue, clock: FakeClock
) -> None:
    # A worker whose event loop stalled past its lease may reclaim its own item: the first
    # run's handle must not finish the second run's lease.
    await enqueue(queue)
    [first] = await queue.claim("a", [KIND], 1)
    clock.advance(LEASE + 1)
    [second] = await queue.claim("a", [KIND], 1)
    assert second.attempts == 2

    with pytest.raises(LeaseLost):
        await _complete(queue, first)

    await _complete(queue, second)
    assert (await load(queue.db, first.id)).status == "done"


async def test_an_item_completes_only_once(queue: WorkQueue) -> None:
    await enqueue(queue)
    [item] = await queue.claim("a", [KIND], 1)
    await _complete(queue, item)

    with pytest.raises(LeaseLost):
        await _complete(queue, item)
    with pytest.raises(LeaseLost):
        await _fail(queue, item)
    stored = await load(queue.db, item.id)
    assert (stored.status, stored.lease_owner, stored.lease_expires_at) == ("done", None, None)


async def test_lease_lost_rolls_back_the_callers_transaction(
    queue: WorkQueue, clock: FakeClock
) -> None:
    # Completion is guarded in the caller's transaction: if the lease is gone, the caller's own
    # state change in that transaction must not commit either.
    await enqueue(queue)
    [stale] = await queue.claim("a", [KIND], 1)
    clock.advance(LEASE + 1)
    await queue.claim("b", [KIND], 1)

    markers: list[WorkItem] = []

    async def change_state_and_complete() -> None:
        async with queue.db.write() as session:
            markers.append(await queue.enqueue(session, "marker"))
            await queue.complete(session, stale)

    with pytest.raises(LeaseLost):
        await change_state_and_complete()

    async with queue.db.read() as session:
        assert await session.get(WorkItem, markers[0].id) is None


async def test_fail_records_the_error_for_good(queue: WorkQueue, clock: FakeClock) -> None:
    await enqueue(queue)
    [item] = await queue.claim("a", [KIND], 1)
    await _fail(queue, item)

    stored = await load(queue.db, item.id)
    assert (stored.status, stored.last_error, stored.lease_owner) == ("failed", "boom", None)
    clock.advance(3600)
    assert await queue.claim("a", [KIND], 10) == []


async def test_retry_later_requeues_within_the_backoff_bounds(
    queue: WorkQueue, clock: FakeClock
) -> None:
    item = await enqueue(queue, max_attempts=5)
    policy = queue.retry  # base 2 s, max 10 s
    for attempt, (low, high) in enumerate([(1, 2), (2, 4), (4, 8), (5, 10)], start=1):
        [claimed] = await queue.claim("w", [KIND], 1)
        assert claimed.attempts == attempt
        async with queue.db.write() as session:
            delay = await queue.retry_later(session, claimed, f"flaky {attempt}")
        assert low <= delay <= high <= policy.max_seconds

        stored = await load(queue.db, item.id)
        assert stored.status == "queued"
        assert stored.lease_owner is None
        assert stored.lease_expires_at is None
        assert stored.last_error == f"flaky {attempt}"
        assert stored.available_at == clock.now + dt.timedelta(seconds=delay)

        # Not before the backoff has passed, then at once.
        clock.advance(delay - 0.01)
        assert await queue.claim("w", [KIND], 1) == []
        clock.advance(0.01)


def test_retry_policy_is_exponential_jittered_and_capped() -> None:
    policy = RetryPolicy(base_seconds=1.0, max_seconds=30.0)
    rng_state = random.getstate()
    try:
        random.seed(1234)
        for attempt in range(1, 12):
            ceiling = min(30.0, 2 ** (attempt - 1))
            delays = [policy.delay(attempt) for _ in range(200)]
            assert all(ceiling / 2 <= d <= ceiling for d in delays)
            assert len(set(delays)) > 100  # jittered, so retries do not stampede together
    finally:
        random.setstate(rng_state)


async def test_release_hands_an_item_back_at_once(queue: WorkQueue, clock: FakeClock) -> None:
    await enqueue(queue, delay_seconds=0)
    [item] = await queue.claim("a", [KIND], 1)
    await queue.release(item)

    stored = await load(queue.db, item.id)
    assert (stored.status, stored.lease_owner) == ("queued", None)
    [again] = await queue.claim("b", [KIND], 1)
    assert again.id == item.id

    # Releasing a lease you no longer hold is a no-op, not an error.
    await queue.release(item)
    assert (await load(queue.db, item.id)).lease_owner == "b"


async def test_cancel_pending_cancels_only_queued_items_of_that_reference(
    queue: WorkQueue, clock: FakeClock
) -> None:
    running = await enqueue(queue, ref_id="r1", priority=1)
    [leased] = await queue.claim("a", [KIND], 1)
    queued = [await enqueue(queue, ref_id="r1") for _ in range(2)]
    delayed = await enqueue(queue, ref_id="r1", delay_seconds=600)
    other_ref = await enqueue(queue, ref_id="r2")
    async with queue.db.write() as session:
        other_kind = await queue.enqueue(session, "other.work", ref_id="r1")

    async with queue.db.write() as session:
        cancelled = await queue.cancel_pending(session, KIND, "r1")

    assert cancelled == 3
    statuses = {i.id: (await load(queue.db, i.id)).status for i in [*queued, delayed]}
    assert set(statuses.values()) == {"cancelled"}
    assert (await load(queue.db, running.id)).status == "running"
    assert (await load(queue.db, other_kind.id)).status == "queued"
    await _complete(queue, leased)
    clock.advance(3600)
    assert [i.id for i in await queue.claim("b", [KIND], 10)] == [other_ref.id]


async def test_enqueue_wakes_workers_only_after_commit(queue: WorkQueue) -> None:
    woken: list[int] = []
    queue.on_enqueue(lambda: woken.append(1))

    async def enqueue_then_fail() -> None:
        async with queue.db.write() as session:
            await queue.enqueue(session, KIND)
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError, match="rolled back"):
        await enqueue_then_fail()
    assert woken == []
    assert await queue.claim("w", [KIND], 10) == []

    async with queue.db.write() as session:
        await queue.enqueue(session, KIND)
        await queue.enqueue(session, KIND)
    assert woken == [1]


@pytest.mark.parametrize("engines", ["shared", "separate"])
async def test_concurrent_claims_never_hand_an_item_to_two_owners(
    database_url: str, db: Database, engines: str
) -> None:
    producer = WorkQueue(db, lease_seconds=LEASE)
    async with db.write() as session:
        items = [await producer.enqueue(session, KIND, priority=i % 3) for i in range(50)]
    databases = (
        [db] * 4 if engines == "shared" else [Database(to_async_url(database_url)) for _ in "abcd"]
    )
    claims: dict[str, list[str]] = {}

    async def claimer(owner: str, queue: WorkQueue) -> None:
        taken = claims.setdefault(owner, [])
        while True:
            limit = random.randint(1, 3)
            batch = await queue.claim(owner, [KIND], limit)
            assert len(batch) <= limit
            if not batch:
                return
            taken.extend(item.id for item in batch)
            await asyncio.sleep(0)  # let the others interleave

    try:
        await asyncio.gather(
            *(
                claimer(f"owner-{n}", WorkQueue(database, lease_seconds=LEASE))
                for n, database in enumerate(databases)
            )
        )
    finally:
        if engines == "separate":
            for database in databases:
                await database.dispose()

    handed_out = [item_id for taken in claims.values() for item_id in taken]
    assert sorted(handed_out) == sorted(item.id for item in items)  # each exactly once
    async with db.read() as session:
        rows = {w.id: w for w in await session.scalars(select(WorkItem))}
    for owner, taken in claims.items():
        for item_id in taken:
            assert rows[item_id].lease_owner == owner
            assert rows[item_id].attempts == 1
