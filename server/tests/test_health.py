from __future__ import annotations

import httpx

from fabric_server import __version__
from fabric_server.db.database import Database
from fabric_server.services import Services


async def test_health_reports_status_and_version(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"status": "ok", "version": __version__}
    assert body["meta"]["status"] == 200
    assert body["meta"]["request_id"] == response.headers["x-request-id"]


async def test_liveness_and_readiness(client: httpx.AsyncClient, services: Services) -> None:
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["data"]["database"] == services.db.dialect


async def test_readiness_fails_when_database_unreachable(
    client: httpx.AsyncClient, services: Services
) -> None:
    healthy = services.db
    services.db = Database("postgresql+asyncpg://postgres@127.0.0.1:1/nowhere")
    try:
        response = await client.get("/readyz")
    finally:
        await services.db.dispose()
        services.db = healthy
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    assert "postgres" not in response.text.lower()
