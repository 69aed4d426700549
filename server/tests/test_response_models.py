"""What a route sends is its declared response model: `ok()` builds the envelope's data from
`response_model=Envelope[X]`, and with `check_responses` (on in every test) data the model
would change fails the request instead of reaching the client."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel

from fabric_server.api.envelope import Envelope, UndeclaredResponse, ok
from fabric_server.app import create_app
from fabric_server.settings import Settings

# Routes whose success is not a JSON envelope: streams, files, redirects, empty answers.
NOT_ENVELOPED = {
    "/v1/events/stream",
    "/v1/jobs/{job_id}/events",
    "/v1/workflow-runs/{run_id}/events",
    "/v1/providers/execute/stream",
    "/v1/auth/social/{provider}",
}


class Thing(BaseModel):
    id: str
    size: int


def _app(check: bool, data: Any) -> FastAPI:
    router = APIRouter()

    @router.get("/thing", response_model=Envelope[Thing])
    async def thing(request: Request) -> JSONResponse:
        return ok(request, data)

    app = FastAPI()
    app.include_router(router)
    app.state.services = SimpleNamespace(settings=SimpleNamespace(check_responses=check))
    return app


async def _get(app: FastAPI) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get("/thing")


async def test_data_is_sent_as_the_declared_model_dumps_it() -> None:
    answer = await _get(_app(False, {"id": "t1", "size": 3, "secret": "not declared"}))
    assert answer.json()["data"] == {"id": "t1", "size": 3}
    modelled = await _get(_app(True, Thing(id="t2", size=4)))
    assert modelled.json()["data"] == {"id": "t2", "size": 4}


@pytest.mark.parametrize(
    "data",
    [
        {"id": "t1", "size": 3, "extra": True},  # a field the model does not declare
        {"id": "t1", "size": "3"},  # another type than the schema says
    ],
)
async def test_checking_refuses_data_the_model_would_change(data: dict[str, Any]) -> None:
    with pytest.raises(UndeclaredResponse, match="GET /thing"):
        await _get(_app(True, data))


def test_every_json_route_declares_its_envelope_model(settings: Settings) -> None:
    app = create_app(settings)
    routes = [
        (context.path, context.original_route)
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute) and context.original_route.include_in_schema
    ]
    assert len(routes) > 100
    assert {path for path, _ in routes} >= NOT_ENVELOPED
    undeclared = []
    for path, route in routes:
        if path in NOT_ENVELOPED or route.status_code == 204:
            continue
        model = route.response_model
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            undeclared.append(f"{sorted(route.methods)} {path}")
        elif "data" not in model.model_fields or "meta" not in model.model_fields:
            undeclared.append(f"{sorted(route.methods)} {path}: {model.__name__}")
    assert undeclared == []
