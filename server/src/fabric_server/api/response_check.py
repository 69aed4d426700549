"""Pure ASGI middleware (on with `check_responses`, as in the tests): a route's success
answer carries an instance of exactly the model its `response_model=Envelope[X]` declares.

`ok()` notes the model it was given on the request state; once the route answers 2xx,
this compares that note with the route's declared data type (`X`, `list[X]` or `None`).
A route answering without `ok()`, or with another model, fails with a 500 (the error net
of `RequestContextMiddleware`), so the published schema and the data sent cannot drift.
"""

from __future__ import annotations

from typing import Any, get_args, get_origin

from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fabric_server.api.envelope import SENT_DATA, Envelope, SentData
from fabric_server.observability.middleware import route_template

# The routes whose success answer is not a JSON envelope: event streams, redirects, pages
# and the metrics scrape. The check passes over them; every other route is checked.
NOT_ENVELOPED: dict[tuple[str, str], str] = {
    ("GET", "/v1/events/stream"): "server-sent events",
    ("GET", "/v1/jobs/{job_id}/events"): "server-sent events",
    ("GET", "/v1/workflow-runs/{run_id}/events"): "server-sent events",
    ("POST", "/v1/providers/execute/stream"): "server-sent events",
    ("GET", "/v1/auth/social/{provider}"): "a redirect to the provider",
    ("GET", "/metrics"): "Prometheus text",
    ("GET", "/docs"): "an HTML page",
}


class UndeclaredResponse(AssertionError):
    """A route answered data other than the model it declares (a server bug)."""


def declared_data(route: APIRoute) -> tuple[bool, type[BaseModel] | None]:
    """`(many, X)` for a route declaring `Envelope[X]` (`many`: `Envelope[list[X]]`; `X`
    None: `Envelope[None]`)."""
    model = route.response_model
    if not (isinstance(model, type) and issubclass(model, Envelope)):
        raise UndeclaredResponse(f"{route.path} declares no Envelope[...] response model")
    annotation: Any = model.model_fields["data"].annotation
    many = get_origin(annotation) is list
    if many:
        (annotation,) = get_args(annotation)
    if annotation is type(None):
        return many, None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return many, annotation
    raise UndeclaredResponse(f"{route.path} declares data of type {annotation!r}")


def check_sent(scope: Scope, status: int) -> None:
    route = scope.get("route")
    if not isinstance(route, APIRoute) or not 200 <= status < 300:
        return
    key = (scope["method"], route_template(scope))
    if key in NOT_ENVELOPED:
        return
    many, model = declared_data(route)
    sent = (scope.get("state") or {}).get(SENT_DATA)
    if not isinstance(sent, SentData):
        raise UndeclaredResponse(f"{key} answered {status} without ok()")
    wrong = {m for m in sent.models if m is not model}
    if sent.many != many or wrong:
        expected = f"list[{model}]" if many else str(model)
        got = sorted(str(m) for m in sent.models)
        raise UndeclaredResponse(
            f"{key} declares Envelope[{expected}] but sent {'a list of ' if sent.many else ''}{got}"
        )


class ResponseModelCheck:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def checked(message: Message) -> None:
            if message["type"] == "http.response.start":
                check_sent(scope, int(message["status"]))
            await send(message)

        await self.app(scope, receive, checked)
