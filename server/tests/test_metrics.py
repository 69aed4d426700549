from __future__ import annotations

from pathlib import Path

import httpx
from metrics_helpers import Scrape

from fabric_server.app import create_app
from fabric_server.services import build_services
from fabric_server.settings import Settings


async def _scrape_with(settings: Settings, headers: dict[str, str] | None = None) -> httpx.Response:
    services = build_services(settings)
    app = create_app(services=services)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://fabric.test") as c:
                return await c.get("/metrics", headers=headers or {})
    finally:
        await services.db.dispose()


async def test_scrape_shows_http_series_by_route_template(client: httpx.AsyncClient) -> None:
    created = await client.post("/v1/jobs", json={"modality": "text", "input": {"prompt": "hello"}})
    assert created.status_code in (200, 201, 202), created.text
    job_id = created.json()["data"]["id"]
    assert (await client.get(f"/v1/jobs/{job_id}")).status_code == 200
    assert (await client.get("/v1/jobs/job_doesnotexist")).status_code == 404
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'route="/v1/jobs/{job_id}",status="200"' in text
    assert 'route="/v1/jobs/{job_id}",status="404"' in text
    assert "fabric_http_request_duration_seconds_bucket" in text
    assert "fabric_db_commit_batch_size_count" in text
    assert job_id not in text
    assert "job_doesnotexist" not in text


async def test_body_less_posts_are_counted_under_their_route(client: httpx.AsyncClient) -> None:
    before = Scrape((await client.get("/metrics")).text)
    response = await client.post("/v1/jobs")  # no body: taken as {}, then refused
    assert response.status_code == 400
    after = Scrape((await client.get("/metrics")).text)
    requests = "fabric_http_requests_total"
    unmatched = {"route": "unmatched", "method": "POST"}
    assert after.value(requests, **unmatched) == before.value(requests, **unmatched)
    jobs = {"route": "/v1/jobs", "method": "POST", "status": "400"}
    assert after.value(requests, **jobs) == before.value(requests, **jobs) + 1


async def test_routes_of_nested_routers_keep_their_full_template(
    client: httpx.AsyncClient,
) -> None:
    # The verification route lives in a router included in the /v1/auth router.
    response = await client.post("/v1/auth/verify", json={"token": "not-a-real-token"})
    assert response.status_code >= 400
    text = (await client.get("/metrics")).text
    assert 'route="/v1/auth/verify"' in text
    assert 'route="/verify"' not in text


async def test_metrics_not_in_openapi(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert "/metrics" not in schema["paths"]


async def test_production_without_setting_is_not_found(settings: Settings) -> None:
    prod = settings.model_copy(
        update={
            "env": "production",
            "dev_mode": False,
            "secrets_master_key": "k" * 32,
            "signing_secret": "production-signing-secret-of-some-length",
        }
    )
    response = await _scrape_with(prod)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_token_protects_the_scrape(settings: Settings, tmp_path: Path) -> None:
    from pydantic import SecretStr

    prod = settings.model_copy(
        update={
            "env": "production",
            "dev_mode": False,
            "secrets_master_key": "k" * 32,
            "signing_secret": "production-signing-secret-of-some-length",
            "metrics_token": SecretStr("s3cret"),
        }
    )
    missing = await _scrape_with(prod)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "unauthorized"
    wrong = await _scrape_with(prod, {"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    good = await _scrape_with(prod, {"Authorization": "Bearer s3cret"})
    assert good.status_code == 200
    assert "fabric_http_requests_total" in good.text
