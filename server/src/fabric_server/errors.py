"""Domain errors: each carries its HTTP status and stable code; one handler renders them."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class BadRequest(DomainError):
    status_code = 400
    code = "bad_request"


class ValidationFailed(DomainError):
    """The request breaks its documented schema (what `/openapi.json` says a body may be)."""

    status_code = 400
    code = "validation_failed"


class Unprocessable(ValidationFailed):
    """The request matches its schema but breaks a rule no schema can state: a cycle in a
    workflow graph, a cursor this server did not issue, an address the mail rules refuse."""

    status_code = 422


class Unauthorized(DomainError):
    status_code = 401
    code = "unauthorized"


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class RateLimited(DomainError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, details: dict[str, Any] | None = None):
        super().__init__(message, details=details)
        self.retry_after = retry_after


class Unavailable(DomainError):
    status_code = 503
    code = "unavailable"
