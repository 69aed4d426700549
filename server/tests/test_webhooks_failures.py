"""Failing endpoints and the safety rails: disabling, timeouts, refused addresses, and a
dispatcher that never delivers an event twice to one endpoint."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_helpers import eventually
from sqlalchemy import func, select
from webhook_helpers import (
    ORG,
    attempts,
    create_webhook,
    finished_job,
    running_app,
    settled_attempts,
    submit_job,
    wait_dispatched,
)
from webhook_receiver import Answer, Received, Receiver

from fabric_server.db.database import Database
from fabric_server.db.types import new_id, utcnow
from fabric_server.engine.models import WorkItem
from fabric_server.events.models import Event
from fabric_server.services import Services
from fabric_server.settings import to_async_url
from fabric_server.testing import fast_settings
from fabric_server.webhooks import repository
from fabric_server.webhooks.dispatcher import DELIVER_KIND, Dispatcher
from fabric_server.webhooks.models import Webhook, WebhookDelivery
from fabric_server.webhooks.sealing import set_secret


def failing(_: Received) -> Answer:
    return 500, {}, b"down"


async def webhook_events(services: Services, kind: str) -> list[Event]:
    async with services.db.read() as session:
        rows = await session.scalars(select(Event).where(Event.kind == kind))
        return list(rows)


async def test_an_endpoint_failing_event_after_event_is_disabled(
    database_url: str, tmp_path: Path
) -> None:
    settings = fast_settings(database_url, tmp_path, webhook_disable_after_failures=2)
    async with running_app(settings) as (client, services):
        with Receiver(answer=failing) as receiver:
            hook = await create_webhook(client, receiver.url, events=["job.*"], max_retries=0)
            await submit_job(client)
            disabled = await eventually(
                lambda: client.get(f"/v1/webhooks/{hook['id']}"),
                lambda r: r.json()["data"]["active"] is False,
            )
            rows = await settled_attempts(client, hook["id"], 3)
        data = disabled.json()["data"]
        assert data["disabled_reason"].startswith("2 deliveries in a row failed")
        assert "HTTP 500" in data["disabled_reason"]
        events = await webhook_events(services, "webhook.disabled")
        assert [e.payload["webhook_id"] for e in events] == [hook["id"]]
        assert events[0].organization_id == ORG
        statuses = sorted((r["status"], r["error"][:12]) for r in rows)
        # Two were sent and failed; the third found the endpoint off (or was the second
        # failure's twin) and was not sent.
        assert [s for s, _ in statuses] == ["failed", "failed", "failed"]
        assert len(receiver.requests) in (2, 3)

        # Turning it back on clears the reason and the streak.
        back = await client.patch(f"/v1/webhooks/{hook['id']}", json={"active": True})
        assert back.json()["data"]["disabled_reason"] is None
        async with services.db.read() as session:
            webhook = await repository.get(session, hook["id"])
            assert webhook is not None
            assert (webhook.consecutive_failures, webhook.failing_since) == (0, None)


async def test_an_endpoint_failing_for_days_is_disabled(database_url: str, tmp_path: Path) -> None:
    # 0.00001 days is under a second: the streak outlives it after a few retries.
    settings = fast_settings(
        database_url,
        tmp_path,
        webhook_disable_after_failures=0,
        webhook_disable_after_days=0.00001,
    )
    async with running_app(settings) as (client, services):
        with Receiver(answer=failing):
            hook = await create_webhook(
                client, "http://127.0.0.1:9/none", events=["job.created"], max_retries=20
            )
            await submit_job(client)
            disabled = await eventually(
                lambda: client.get(f"/v1/webhooks/{hook['id']}"),
                lambda r: r.json()["data"]["active"] is False,
            )
        assert "every delivery failed since" in disabled.json()["data"]["disabled_reason"]
        assert len(await webhook_events(services, "webhook.disabled")) == 1
        rows = await settled_attempts(client, hook["id"], 1)
        assert rows[-1]["status"] == "failed"


async def test_a_success_resets_the_failure_streak(database_url: str, tmp_path: Path) -> None:
    settings = fast_settings(database_url, tmp_path, webhook_disable_after_failures=2)
    failing_jobs: set[str] = set()

    def by_job(request: Received) -> Answer:
        return (500 if request.event["job_id"] in failing_jobs else 200), {}, b""

    async with running_app(settings) as (client, _):
        with Receiver(answer=by_job) as receiver:
            hook = await create_webhook(
                client, receiver.url, events=["job.completed"], max_retries=0
            )
            for index, fails in enumerate([True, False, True]):
                job_id = await submit_job(client)
                if fails:
                    failing_jobs.add(job_id)
                await settled_attempts(client, hook["id"], index + 1)
        rows = await attempts(client, hook["id"])
        assert sorted(r["status"] for r in rows) == ["failed", "failed", "succeeded"]
        # fail, success, fail: never two in a row, so the endpoint stays on.
        assert (await client.get(f"/v1/webhooks/{hook['id']}")).json()["data"]["active"]


@pytest.fixture
async def strict(database_url: str, tmp_path: Path) -> Any:
    settings = fast_settings(database_url, tmp_path, webhook_allow_private=False)
    async with running_app(settings) as pair:
        yield pair


async def test_a_name_resolving_to_loopback_is_refused_at_delivery(strict: Any) -> None:
    client, services = strict
    with Receiver() as receiver:
        # As if `localhost` had pointed at a public address when the webhook was stored
        # (DNS rebinding): the check after resolution still refuses it.
        async with services.db.write() as session:
            event = await services.events.record(session, "test.marker", organization_id=ORG)
            await session.flush()
            webhook = Webhook(
                id=new_id(),
                organization_id=ORG,
                url=f"http://localhost:{receiver.port}/hooks",
                event_filter=["job.*"],
                active=True,
                max_retries=0,
                start_seq=event.seq,
                consecutive_failures=0,
            )
            set_secret(webhook, services.master_key.cipher, "whsec_test_secret")
            session.add(webhook)
        await submit_job(client)
        rows = await settled_attempts(client, webhook.id, 3)
    assert receiver.requests == []
    for row in rows:
        assert row["status"] == "failed"
        assert row["status_code"] is None
        assert row["error"].startswith("not sent: localhost (")
        assert "not allowed" in row["error"]


async def test_a_slow_receiver_times_out(database_url: str, tmp_path: Path) -> None:
    settings = fast_settings(database_url, tmp_path, webhook_timeout_seconds=0.3)
    release = threading.Event()

    def hang(_: Received) -> Answer:
        release.wait(10)
        return 200, {}, b"late"

    async with running_app(settings) as (client, _):
        with Receiver(answer=hang) as receiver:
            hook = await create_webhook(client, receiver.url, events=["job.created"], max_retries=0)
            await submit_job(client)
            rows = await settled_attempts(client, hook["id"], 1)
            release.set()
    assert rows[0]["status"] == "failed"
    assert rows[0]["error"] == "timed out after 0.3 s"
    assert 250 <= rows[0]["latency_ms"] < 3000


async def count(services: Services, model: Any, *where: Any) -> int:
    async with services.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)))


@pytest.fixture
async def api_only(database_url: str, tmp_path: Path) -> Any:
    """No workers and no dispatcher: the test drives dispatching itself."""
    settings = fast_settings(database_url, tmp_path, run_workers=False)
    async with running_app(settings) as pair:
        yield pair


async def test_dispatching_again_never_duplicates_a_delivery(api_only: Any) -> None:
    client, services = api_only
    hook = await create_webhook(client, "http://127.0.0.1:9/x", events=["job.created"])
    job_ids = [await submit_job(client) for _ in range(3)]
    dispatcher = services.webhooks.dispatcher
    assert await dispatcher.dispatch_once() is False  # not a full batch: nothing more
    assert await count(services, WebhookDelivery) == 3
    assert await count(services, WorkItem, WorkItem.kind == DELIVER_KIND) == 3

    # As if the position had been lost: the same events are seen again, and skipped.
    async with services.db.write() as session:
        await repository.set_dispatch_position(session, 0, utcnow())
    await dispatcher.dispatch_once()
    assert await count(services, WebhookDelivery) == 3
    assert await count(services, WorkItem, WorkItem.kind == DELIVER_KIND) == 3
    rows = await attempts(client, hook["id"])
    assert sorted(r["status"] for r in rows) == ["pending"] * 3
    assert all(r["attempt"] == 1 for r in rows)
    async with services.db.read() as session:
        seen = await session.scalars(select(WebhookDelivery.event_id))
        assert len(set(seen)) == len(job_ids)


async def test_many_dispatchers_deliver_each_event_once(api_only: Any, database_url: str) -> None:
    client, services = api_only
    await create_webhook(client, "http://127.0.0.1:9/x", events=["job.created"])
    await create_webhook(client, "http://127.0.0.1:9/y", events=["job.*"])
    for _ in range(12):
        await submit_job(client)
    # Four dispatchers, each with its own connection pool (as separate processes would be).
    databases = [Database(to_async_url(database_url)) for _ in range(4)]
    try:
        dispatchers = [
            Dispatcher(db, services.queue, services.broadcaster, poll_seconds=1, batch=5)
            for db in databases
        ]

        async def drain(dispatcher: Dispatcher) -> None:
            for _ in range(50):
                await dispatcher.dispatch_once()

        await asyncio.gather(*(drain(d) for d in dispatchers))
    finally:
        for db in databases:
            await db.dispose()
    assert await count(services, WebhookDelivery) == 24
    assert await count(services, WorkItem, WorkItem.kind == DELIVER_KIND) == 24


async def test_an_event_written_before_the_webhook_is_never_delivered(
    client: httpx.AsyncClient, services: Services
) -> None:
    with Receiver() as receiver:
        before = await finished_job(client)
        hook = await create_webhook(client, receiver.url, events=["job.*"])
        after = await finished_job(client)
        await wait_dispatched(services, after)
        await settled_attempts(client, hook["id"], 3)
    assert {r.event["job_id"] for r in receiver.requests} == {after}
    assert before != after
