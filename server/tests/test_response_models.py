"""Routes answer with the model they declare (`response_model=Envelope[X]`); with
`check_responses` on, as in every test, another model is a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel

from fabric_server.api.envelope import Envelope, ok
from fabric_server.api.response_check import NOT_ENVELOPED, declared_data
from fabric_server.app import create_app
from fabric_server.services import Services
from fabric_server.settings import Settings


class Shape(BaseModel):
    name: str


class Other(BaseModel):
    name: str


def add_probe_routes(app: FastAPI) -> None:
    @app.get("/probe/right", response_model=Envelope[Shape])
    async def right(request: Request) -> JSONResponse:
        return ok(request, Shape(name="a"))

    @app.get("/probe/other-model", response_model=Envelope[Shape])
    async def other_model(request: Request) -> JSONResponse:
        return ok(request, Other(name="a"))

    @app.get("/probe/without-ok", response_model=Envelope[Shape])
    async def without_ok(request: Request) -> JSONResponse:
        return JSONResponse({"data": {"name": "a"}, "meta": {"status": 200, "request_id": "r"}})

    @app.get("/probe/list", response_model=Envelope[list[Shape]])
    async def listed(request: Request) -> JSONResponse:
        return ok(request, [Shape(name="a"), Shape(name="b")])

    @app.get("/probe/list-of-other", response_model=Envelope[list[Shape]])
    async def list_of_other(request: Request) -> JSONResponse:
        return ok(request, [Shape(name="a"), Other(name="b")])

    @app.get("/probe/one-for-list", response_model=Envelope[list[Shape]])
    async def one_for_list(request: Request) -> JSONResponse:
        return ok(request, Shape(name="a"))

    @app.get("/probe/dict", response_model=Envelope[Shape])
    async def plain_dict(request: Request) -> JSONResponse:
        return ok(request, {"name": "a"})  # type: ignore[arg-type]  # what mypy refuses

    @app.get("/probe/none", response_model=Envelope[None])
    async def nothing(request: Request) -> JSONResponse:
        return ok(request, None)


@pytest.fixture
async def probe(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(services=services)
    add_probe_routes(app)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://fabric.test") as c:
            yield c


async def test_the_declared_model_is_sent(probe: httpx.AsyncClient) -> None:
    right = await probe.get("/probe/right")
    assert right.status_code == 200
    assert right.json()["data"] == {"name": "a"}
    listed = await probe.get("/probe/list")
    assert listed.json()["data"] == [{"name": "a"}, {"name": "b"}]
    nothing = await probe.get("/probe/none")
    assert nothing.status_code == 200
    assert nothing.json()["data"] is None


@pytest.mark.parametrize(
    "path", ["other-model", "without-ok", "list-of-other", "one-for-list", "dict"]
)
async def test_another_answer_is_refused(probe: httpx.AsyncClient, path: str) -> None:
    response = await probe.get(f"/probe/{path}")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"


def test_every_route_declares_its_data_or_is_listed_as_not_enveloped(
    settings: Settings,
) -> None:
    app = create_app(settings)
    seen: set[tuple[str, str]] = set()
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute):
            continue
        keys = {(method, route.path) for method in route.methods or ()}
        seen |= keys
        if keys & NOT_ENVELOPED.keys():
            continue
        declared_data(route.original_route)  # raises for anything but Envelope[X | list[X]]
    assert NOT_ENVELOPED.keys() <= seen, "NOT_ENVELOPED lists routes that are gone"
