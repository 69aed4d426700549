"""The wire envelope: `{"data": …, "meta": {"status", "request_id"}}`, errors alike."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, TypeAdapter

T = TypeVar("T")


class Meta(BaseModel):
    status: int
    request_id: str


class Envelope(BaseModel, Generic[T]):
    data: T
    meta: Meta


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable error code")
    message: str
    details: dict[str, Any] | None = None


class ErrorEnvelope(BaseModel):
    data: None = None
    error: ErrorBody
    meta: Meta


def request_id_of(request: Request) -> str:
    rid = getattr(request.state, "request_id", None)
    return rid if isinstance(rid, str) else "req_unknown"


def ok(request: Request, data: Any, status: int = 200) -> JSONResponse:
    """A success response in the envelope, its `data` built from the model the route
    declares (`response_model=Envelope[X]`): `data` (a model, or JSON-ready values) is
    validated as an `X` and sent as that `X` dumps, so what the OpenAPI document promises
    is what is sent. With `check_responses` on (tests), data the model would change —
    a field it does not declare, a missing one, another type — is refused as a 500."""
    shape = _declared_data(request)
    if shape is not None:
        sent = shape.dump_python(shape.validate_python(data), mode="json")
        if _checking(request):
            given = data.model_dump(mode="json") if isinstance(data, BaseModel) else data
            if sent != given:
                raise UndeclaredResponse(request, given, sent)
        data = sent
    body = {"data": data, "meta": {"status": status, "request_id": request_id_of(request)}}
    return JSONResponse(body, status_code=status)


class UndeclaredResponse(Exception):
    """A route sent data its declared response model does not describe (a server bug)."""

    def __init__(self, request: Request, given: Any, sent: Any) -> None:
        route = request.scope.get("route")
        super().__init__(
            f"{request.method} {getattr(route, 'path', request.url.path)} answered data its "
            f"declared model changes:\n given: {given!r}\n model: {sent!r}"
        )


def _declared_data(request: Request) -> TypeAdapter[Any] | None:
    """The type of `data` in the route's `response_model=Envelope[X]` (None: undeclared)."""
    route = request.scope.get("route")
    if route is None:
        return None
    try:
        shape: TypeAdapter[Any] | None = route.__dict__["_data_shape"]
    except KeyError:  # the first answer of this route: kept on the route itself
        model = getattr(route, "response_model", None)
        field = getattr(model, "model_fields", {}).get("data") if model is not None else None
        shape = None if field is None else TypeAdapter(field.annotation)
        route.__dict__["_data_shape"] = shape
    return shape


def _checking(request: Request) -> bool:
    services = getattr(request.app.state, "services", None)
    return bool(services is not None and services.settings.check_responses)


def error_response(
    request_id: str,
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    body = {"data": None, "error": error, "meta": {"status": status, "request_id": request_id}}
    return JSONResponse(body, status_code=status, headers=headers)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorEnvelope, "description": description}
    for status, description in (
        (400, "Invalid request"),
        (401, "Missing or invalid credentials"),
        (403, "Not allowed"),
        (404, "Not found (or not visible to the caller)"),
        (409, "Conflict"),
        (422, "Well-formed and schema-valid, but breaks a rule the schema cannot state"),
        (429, "Rate limited"),
        (500, "Internal error"),
        (503, "Unavailable"),
    )
}


# For the routes that start paid provider calls.
BUDGET_EXCEEDED_RESPONSE: dict[int | str, dict[str, Any]] = {
    402: {
        "model": ErrorEnvelope,
        "description": "The organization's monthly budget is spent (`budget_exceeded`)",
    }
}
