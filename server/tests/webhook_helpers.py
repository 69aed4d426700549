"""Helpers for the webhook tests: an app with chosen settings, and API shortcuts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from server_helpers import eventually, wait_for_job

from fabric_server.app import create_app
from fabric_server.events import repository
from fabric_server.events.repository import EventFilter
from fabric_server.services import Services, build_services
from fabric_server.settings import DEFAULT_ORGANIZATION_ID, Settings
from fabric_server.webhooks import repository as webhook_repository

ORG = DEFAULT_ORGANIZATION_ID


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    """The ASGI app in-process with its lifespan (workers and the dispatcher included)."""
    services = build_services(settings)
    app = create_app(services=services)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://fabric.test") as c:
                yield c, services
    finally:
        await services.db.dispose()


async def create_webhook(client: httpx.AsyncClient, url: str, **fields: Any) -> dict[str, Any]:
    body = {"organization_id": ORG, "url": url, **fields}
    response = await client.post("/v1/webhooks", json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def submit_job(client: httpx.AsyncClient, **body: Any) -> str:
    payload = {"modality": "text", "input": {"prompt": "hi"}, **body}
    response = await client.post("/v1/jobs", json=payload)
    assert response.status_code == 201, response.text
    job_id: str = response.json()["data"]["id"]
    return job_id


async def finished_job(client: httpx.AsyncClient, **body: Any) -> str:
    """Submit a job and wait until it completed (so all its events are written)."""
    job_id = await submit_job(client, **body)
    await wait_for_job(client, job_id, "completed")
    return job_id


async def attempts(client: httpx.AsyncClient, webhook_id: str) -> list[dict[str, Any]]:
    """Every delivery attempt of the webhook, oldest first (all pages)."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        response = await client.get(f"/v1/webhooks/{webhook_id}/deliveries", params=params)
        assert response.status_code == 200, response.text
        page = response.json()["data"]
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return list(reversed(items))


async def settled_attempts(
    client: httpx.AsyncClient, webhook_id: str, deliveries: int, timeout: float = 20.0
) -> list[dict[str, Any]]:
    """Wait until `deliveries` deliveries have a final attempt (succeeded or failed)."""

    async def probe() -> list[dict[str, Any]]:
        return await attempts(client, webhook_id)

    def settled(rows: list[dict[str, Any]]) -> bool:
        final = {r["delivery_id"] for r in rows if r["status"] in ("succeeded", "failed")}
        return len(final) >= deliveries

    return await eventually(probe, settled, timeout)


async def job_event_ids(services: Services, job_id: str) -> list[str]:
    async with services.db.read() as session:
        rows = await repository.events_after(session, 0, EventFilter(job_id=job_id))
    return [row.id for row in rows]


async def wait_dispatched(services: Services, job_id: str) -> None:
    """Wait until the dispatcher has gone past every event of the job."""
    async with services.db.read() as session:
        rows = await repository.events_after(session, 0, EventFilter(job_id=job_id))
    last = max(row.seq for row in rows)

    async def position() -> int:
        async with services.db.read() as session:
            return await webhook_repository.dispatch_position(session, lock=False) or 0

    await eventually(position, lambda seq: seq >= last)
