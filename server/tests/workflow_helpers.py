"""Helpers for the workflow tests: define, start, wait, read the log."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from server_helpers import eventually

from fabric_server.app import create_app
from fabric_server.services import Services, build_services
from fabric_server.settings import Settings

TERMINAL = ("completed", "failed", "cancelled")


@asynccontextmanager
async def app_client(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    """The app in-process with these settings (for tests that need other than the default)."""
    services = build_services(settings)
    app = create_app(services=services)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://fabric.test") as c:
            yield c, services


async def define(
    client: httpx.AsyncClient, nodes: list[dict[str, Any]], name: str | None = None, **extra: Any
) -> dict[str, Any]:
    body = {"name": name or f"wf-{uuid.uuid4().hex[:8]}", "nodes": nodes, **extra}
    response = await client.post("/v1/workflow-definitions", json=body)
    assert response.status_code in (200, 201), response.text
    definition: dict[str, Any] = response.json()["data"]
    return definition


async def start(
    client: httpx.AsyncClient,
    definition_id: str,
    context: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Create and start a run the way the reference client does; returns the started run."""
    body = {"workflow_definition_id": definition_id, "context": context or {}, **extra}
    created = await client.post("/v1/workflow-runs", json=body)
    assert created.status_code in (200, 201), created.text
    run_id = created.json()["data"]["id"]
    started = await client.post(f"/v1/workflow-runs/{run_id}/start", json={})
    assert started.status_code == 202, started.text
    run: dict[str, Any] = started.json()["data"]
    return run


async def get_run(client: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/workflow-runs/{run_id}")
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()["data"]
    return run


async def wait_for_run(
    client: httpx.AsyncClient, run_id: str, *statuses: str, timeout: float = 20.0
) -> dict[str, Any]:
    wanted = statuses or TERMINAL
    return await eventually(
        lambda: get_run(client, run_id), lambda run: run["status"] in wanted, timeout
    )


async def run_workflow(
    client: httpx.AsyncClient,
    nodes: list[dict[str, Any]],
    context: dict[str, Any] | None = None,
    **definition_extra: Any,
) -> dict[str, Any]:
    """Define, start, and wait for the run to end."""
    definition = await define(client, nodes, **definition_extra)
    run = await start(client, definition["id"], context)
    return await wait_for_run(client, run["id"])


async def run_log(client: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/workflow-runs/{run_id}/log")
    assert response.status_code == 200, response.text
    log: dict[str, Any] = response.json()["data"]
    return log


async def event_kinds(client: httpx.AsyncClient, run_id: str) -> list[tuple[str, str | None]]:
    log = await run_log(client, run_id)
    return [(event["kind"], event["node_key"]) for event in log["events"]]


def node(run: dict[str, Any], key: str) -> dict[str, Any]:
    found: dict[str, Any] = next(n for n in run["nodes"] if n["node_key"] == key)
    return found
