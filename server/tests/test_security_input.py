"""Input no route should ever see is refused at the door: JSON nested too deeply and the NUL
character (which PostgreSQL cannot store) — and what is stored always renders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from server_helpers import assert_error
from sqlalchemy import update
from workflow_helpers import app_client

from fabric_server.services import Services
from fabric_server.testing import fast_settings
from fabric_server.workflows.models import WorkflowRun


def nested(depth: int) -> dict[str, Any]:
    """An object `depth` levels deep: {"a": {"a": … {"leaf": 1}}}."""
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


async def definition(client: httpx.AsyncClient) -> str:
    response = await client.post(
        "/v1/workflow-definitions",
        json={"name": "deep", "nodes": [{"key": "a", "operation": "workflow.noop"}]},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["data"]["id"])


async def test_bodies_nested_past_the_limit_are_refused_naming_the_place(
    client: httpx.AsyncClient,
) -> None:
    wf = await definition(client)
    # The body itself is one level: a context of 63 levels fits the default of 64.
    ok = await client.post(
        "/v1/workflow-runs", json={"workflow_definition_id": wf, "context": nested(63)}
    )
    assert ok.status_code == 201, ok.text
    for path, body in (
        ("/v1/workflow-runs", {"workflow_definition_id": wf, "context": nested(240)}),
        ("/v1/jobs", {"modality": "text", "input": {"prompt": "x", "extra": [nested(80)]}}),
    ):
        body_out = assert_error(await client.post(path, json=body), 400, "validation_failed")
        error = body_out["error"]["details"]["errors"][0]
        assert error["in"] == "body"
        assert error["path"].startswith(("context.a.a.a", "input.extra.0.a.a"))
        assert "nested deeper than 64 levels" in body_out["error"]["message"]
    listed = await client.get("/v1/workflow-runs")
    assert listed.status_code == 200
    assert len(listed.json()["data"]["items"]) == 1


async def test_the_depth_limit_is_a_setting(database_url: str, tmp_path: Path) -> None:
    settings = fast_settings(database_url, tmp_path, json_max_depth=4)
    async with app_client(settings) as (client, _services):
        fine = {"modality": "text", "input": {"prompt": "x", "meta": {"a": 1}}}
        assert (await client.post("/v1/jobs", json=fine)).status_code == 201
        deep = {"modality": "text", "input": {"prompt": "x", "meta": {"a": {"b": [1]}}}}
        body = assert_error(await client.post("/v1/jobs", json=deep), 400, "validation_failed")
        assert body["error"]["details"]["errors"][0]["path"] == "input.meta.a.b"


async def test_a_run_nested_too_deeply_to_render_does_not_break_the_list(
    client: httpx.AsyncClient, services: Services
) -> None:
    wf = await definition(client)
    poisoned = await client.post("/v1/workflow-runs", json={"workflow_definition_id": wf})
    healthy = await client.post("/v1/workflow-runs", json={"workflow_definition_id": wf})
    run_id = poisoned.json()["data"]["id"]
    # Stored before limits existed (or grown by a workflow): deeper than any model renders.
    async with services.db.write() as session:
        await session.execute(
            update(WorkflowRun).where(WorkflowRun.id == run_id).values(context=nested(300))
        )
    listed = await client.get("/v1/workflow-runs")
    assert listed.status_code == 200, listed.text
    items = {item["id"]: item for item in listed.json()["data"]["items"]}
    assert set(items) == {run_id, healthy.json()["data"]["id"]}
    assert "clipped" in str(items[run_id]["context"])
    assert (await client.get(f"/v1/workflow-runs/{run_id}")).status_code == 200
    cancelled = await client.post(f"/v1/workflow-runs/{run_id}/cancel", json={})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["data"]["status"] == "cancelled"


async def test_nul_characters_are_refused_everywhere_with_400(client: httpx.AsyncClient) -> None:
    nul = "a\u0000b"
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/v1/auth/signup", {"json": {"email": f"{nul}@example.com", "password": "x" * 9}}),
        ("POST", "/v1/auth/login", {"json": {"email": "a@example.com", "password": nul}}),
        ("POST", "/v1/auth/forgot-password", {"json": {"email": f"{nul}@example.com"}}),
        ("POST", "/v1/jobs", {"json": {"modality": "text", "input": {"prompt": nul}}}),
        ("POST", "/v1/jobs", {"json": {"modality": "text", "input": {nul: "key"}}}),
        ("POST", "/v1/organizations", {"json": {"slug": "nul", "name": nul}}),
        ("GET", "/v1/jobs", {"params": {"organization_id": nul}}),
        ("GET", "/v1/workflow-runs", {"params": {"status": "pending", "cursor": nul}}),
        ("GET", "/v1/jobs/a%00b", {}),
        ("GET", "/v1/api-keys/a%00b", {}),
        ("POST", "/v1/jobs", {"json": {"modality": "text"}, "headers": {"user-agent": nul}}),
        ("POST", "/v1/jobs", {"json": {"modality": "text"}, "headers": {"idempotency-key": nul}}),
    ]
    for method, path, kwargs in requests:
        response = await client.request(method, path, **kwargs)
        body = assert_error(response, 400, "validation_failed")
        error = body["error"]["details"]["errors"][0]
        assert error["in"] in ("body", "query", "path", "header"), (path, body)
        assert "NUL" in error["message"]
    untyped = await client.post(
        "/v1/jobs",
        content=b'{"modality": "text", "input": {"prompt": "a\\u0000b"}}',
    )
    assert "content-type" not in untyped.request.headers
    assert_error(untyped, 400, "validation_failed")
    # The same text without the NUL goes through; an escaped backslash is not a NUL.
    fine = await client.post(
        "/v1/jobs", json={"modality": "text", "input": {"prompt": "a\\u0000b"}}
    )
    assert fine.status_code == 201, fine.text
    assert fine.json()["data"]["input"]["prompt"] == "a\\u0000b"
