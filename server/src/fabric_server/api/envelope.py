"""The wire envelope: `{"data": …, "meta": {"status", "request_id"}}`, errors alike."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

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


# Where `ok` notes what it sent, for the response check (api/response_check.py).
SENT_DATA = "sent_data"


@dataclass(frozen=True)
class SentData:
    """What `ok` answered with: one model (or None), or a list of models."""

    many: bool
    models: frozenset[type[BaseModel] | None]


def ok(
    request: Request, data: BaseModel | Sequence[BaseModel] | None, status: int = 200
) -> JSONResponse:
    """A success response in the envelope: `data` is an instance of the model the route
    declares (`response_model=Envelope[X]`), a list of them (`Envelope[list[X]]`), or None
    (`Envelope[None]`); it is sent as the model dumps it."""
    sent: Any
    if data is None or isinstance(data, BaseModel):
        sent = None if data is None else data.model_dump(mode="json")
        note = SentData(many=False, models=frozenset({None if data is None else type(data)}))
    elif isinstance(data, Sequence) and all(isinstance(item, BaseModel) for item in data):
        sent = [item.model_dump(mode="json") for item in data]
        note = SentData(many=True, models=frozenset(type(item) for item in data))
    else:
        raise TypeError(f"ok() takes a response model, not {type(data).__name__}")
    setattr(request.state, SENT_DATA, note)
    body = {"data": sent, "meta": {"status": status, "request_id": request_id_of(request)}}
    return JSONResponse(body, status_code=status)


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
