"""Every failure answers with the error envelope and a stable code — never a traceback."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from server_helpers import assert_error

from fabric_server.app import create_app
from fabric_server.services import Services


async def test_unknown_route_is_not_found(client: httpx.AsyncClient) -> None:
    body = assert_error(await client.get("/v1/nope"), 404, "not_found")
    assert "/v1/nope" in body["error"]["message"]


async def test_wrong_method(client: httpx.AsyncClient) -> None:
    assert_error(await client.delete("/v1/health"), 405, "method_not_allowed")


async def test_malformed_json(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/jobs", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_error(response, 400, "invalid_json")


async def test_validation_error_names_each_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/jobs", json={"modality": "smell", "input": "x"})
    body = assert_error(response, 400, "validation_failed")
    paths = {err["path"] for err in body["error"]["details"]["errors"]}
    assert paths == {"modality", "input"}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/jobs", {"modality": "text", "input": {"prompt": "x"}, "priority": "5"}, "priority"),
        ("/v1/jobs", {"modality": "text", "input": {"prompt": "x"}, "priority": True}, "priority"),
        ("/v1/webhooks", {"url": "https://example.com/h", "active": "true"}, "active"),
        ("/v1/webhooks", {"url": "https://example.com/h", "max_retries": "3"}, "max_retries"),
        ("/v1/webhooks", {"url": "https://example.com/h", "max_retries": 2.5}, "max_retries"),
    ],
)
async def test_numbers_and_booleans_are_not_read_from_strings(
    client: httpx.AsyncClient, path: str, body: dict[str, object], field: str
) -> None:
    # The schema says integer or boolean: a string (or a boolean for an integer) is refused,
    # not converted, and nothing is created.
    before = (await client.get(path)).json()["data"]
    response = await client.post(path, json=body)
    answer = assert_error(response, 400, "validation_failed")
    assert field in {e["path"].split(".")[0] for e in answer["error"]["details"]["errors"]}
    assert (await client.get(path)).json()["data"] == before


async def test_an_integer_may_be_written_with_a_zero_fraction(client: httpx.AsyncClient) -> None:
    # 5.0 is the integer 5 to JSON Schema, so the documented contract accepts it.
    body = {"modality": "text", "input": {"prompt": "x"}, "priority": 5.0}
    response = await client.post("/v1/jobs", json=body)
    assert response.status_code == 201, response.text


async def test_empty_json_post_is_an_empty_object(client: httpx.AsyncClient) -> None:
    # A body-less POST with a JSON content type is `{}`: here it fails validation on the
    # missing fields, never as malformed JSON.
    response = await client.post("/v1/jobs", headers={"content-type": "application/json"})
    body = assert_error(response, 400, "validation_failed")
    assert {e["path"] for e in body["error"]["details"]["errors"]} == {"modality", "input"}


async def test_caller_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/nope", headers={"x-request-id": "trace-123"})
    assert response.headers["x-request-id"] == "trace-123"
    assert response.json()["meta"]["request_id"] == "trace-123"


async def test_unsafe_request_id_is_replaced(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/health", headers={"x-request-id": "bad id\twith tabs"})
    assert response.headers["x-request-id"].startswith("req_")


@pytest.fixture
async def crashing_app(services: Services) -> FastAPI:
    app = create_app(services=services)

    async def boom() -> None:
        raise RuntimeError("secret internals: SELECT * FROM users")

    app.add_api_route("/v1/boom", boom)
    return app


async def test_unexpected_exception_is_internal_error(crashing_app: FastAPI) -> None:
    async with crashing_app.router.lifespan_context(crashing_app):
        transport = httpx.ASGITransport(app=crashing_app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://fabric.test") as client:
            response = await client.get("/v1/boom")
    body = assert_error(response, 500, "internal_error")
    assert "SELECT" not in response.text
    assert "Traceback" not in response.text
    assert body["error"]["message"] == "The server hit an unexpected error."
