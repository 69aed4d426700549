"""Every failure leaves as the error envelope with a stable code."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from fabric_server.api.envelope import error_response, request_id_of
from fabric_server.errors import DomainError, RateLimited

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]


async def _domain_error(request: Request, exc: DomainError) -> JSONResponse:
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
    return error_response(
        request_id_of(request), exc.status_code, exc.code, exc.message, exc.details, headers
    )


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    status = exc.status_code
    if status == 404:
        message = f"No route matches {request.method} {request.url.path}"
    elif status == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}"
    else:
        message = exc.detail if isinstance(exc.detail, str) else "Request failed"
    code = _STATUS_CODES.get(status, "internal_error" if status >= 500 else "bad_request")
    headers = getattr(exc, "headers", None)
    if status == 405:
        headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
    return error_response(request_id_of(request), status, code, message, headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves on this path (each method is its own route, so the
    router's own answer names only the first one it met)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match != Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    return sorted(methods)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [_describe(err) for err in exc.errors()]
    if any(err["type"] == "json_invalid" for err in errors):
        return error_response(
            request_id_of(request), 400, "invalid_json", "The request body is not valid JSON."
        )
    summary = "; ".join(f"{e['path'] or 'body'}: {e['message']}" for e in errors[:3])
    return error_response(
        request_id_of(request),
        400,
        "validation_failed",
        f"Invalid request: {summary}",
        {"errors": errors},
    )


def _describe(err: Any) -> dict[str, Any]:
    loc = [str(part) for part in err.get("loc", ())]
    if loc and loc[0] in ("body", "query", "path", "header"):
        where, rest = loc[0], loc[1:]
    else:
        where, rest = "body", loc
    # Validator wrappers name themselves in the location of a union member's error.
    rest = [part for part in rest if not part.startswith(("function-before[", "function-after["))]
    message = str(err.get("msg", "invalid"))
    try:
        json.dumps(message)
    except (TypeError, ValueError):  # pragma: no cover - msg is always a str
        message = "invalid"
    return {"path": ".".join(rest), "in": where, "message": message, "type": err.get("type")}
