"""The one exception tree of the SDK.

Users catch these classes and never need to import httpx: transport failures are wrapped in
`FabricConnectionError` (raised ``from`` the httpx error), and every non-2xx answer becomes a
`FabricAPIError` subclass chosen by status code (wire-spec §3.3).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    import httpx

__all__ = [
    "FabricAPIError",
    "FabricAuthError",
    "FabricBudgetExceededError",
    "FabricClientClosedError",
    "FabricConflictError",
    "FabricConnectionError",
    "FabricError",
    "FabricForbiddenError",
    "FabricNotFoundError",
    "FabricRateLimitError",
    "FabricServerError",
    "FabricSignatureError",
    "FabricTimeoutError",
    "FabricValidationError",
    "FabricWaitTimeout",
]


class FabricError(Exception):
    """Root of every exception the SDK raises on purpose."""


class FabricSignatureError(FabricError):
    """A webhook delivery failed verification: missing, wrong or stale signature, or a body
    that is not a JSON object (see `fabric_platform.webhooks`)."""


class FabricClientClosedError(FabricError):
    """A method was called on a client after `close()` (or after its ``with`` block ended)."""


class FabricConnectionError(FabricError):
    """The server could not be reached, or the connection broke before a full answer arrived."""


class FabricTimeoutError(FabricConnectionError):
    """Connecting, sending or waiting for the answer took longer than the client's timeout."""


class FabricWaitTimeout(FabricTimeoutError, TimeoutError):
    """A client-side wait (such as `wait_for_run`) ran out of time before the awaited state.

    It is also a builtin `TimeoutError`, so ``except TimeoutError`` catches it. `run_id` (or
    `job_id`) names the awaited run (or job) and `last_status` the status it had when the wait
    gave up.
    """

    def __init__(
        self,
        message: str,
        *,
        run_id: Optional[str] = None,
        last_status: Optional[str] = None,
        job_id: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.job_id = job_id
        self.last_status = last_status


class FabricAPIError(FabricError):
    """The server answered with a non-2xx status.

    Attributes:
        status_code: the HTTP status.
        code: the stable machine-readable ``error.code`` of the envelope, or None.
        message: ``error.message`` of the envelope, else ``"HTTP <status>"``.
        request_id: ``meta.request_id`` of the envelope, or None.
        details: ``error.details`` when the server sent an object there, or None.
        response: the raw ``httpx.Response`` (already read), for anything not covered above.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: Optional[str] = None,
        request_id: Optional[str] = None,
        details: Optional[dict[str, Any]] = None,
        response: Optional[httpx.Response] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code
        self.request_id = request_id
        self.details = details
        self.response = response

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status_code={self.status_code!r}, code={self.code!r}, "
            f"message={self.message!r}, request_id={self.request_id!r})"
        )


class FabricValidationError(FabricAPIError):
    """400 or 422: the request was malformed or failed validation (see `details`)."""


class FabricAuthError(FabricAPIError):
    """401: missing, invalid or expired credentials."""


class FabricBudgetExceededError(FabricAPIError):
    """402 ``budget_exceeded``: the organization spent its monthly budget, so paid provider
    calls are refused until next month or until an admin raises the limit. ``details`` has
    ``monthly_limit_usd``, ``spent_usd``, ``estimated_cost_usd`` and the period."""


class FabricForbiddenError(FabricAPIError):
    """403: the caller is authenticated but lacks the permission."""


class FabricNotFoundError(FabricAPIError):
    """404: no such resource, or it exists but is not visible to the caller."""


class FabricConflictError(FabricAPIError):
    """409: a uniqueness or state-machine conflict."""


class FabricRateLimitError(FabricAPIError):
    """429: too many requests. `retry_after` is the server's ``Retry-After`` in seconds."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: Optional[str] = None,
        request_id: Optional[str] = None,
        details: Optional[dict[str, Any]] = None,
        response: Optional[httpx.Response] = None,
        retry_after: Optional[float] = None,
    ) -> None:
        super().__init__(
            message,
            status_code=status_code,
            code=code,
            request_id=request_id,
            details=details,
            response=response,
        )
        self.retry_after = retry_after


class FabricServerError(FabricAPIError):
    """5xx: the server (or a proxy in front of it) failed."""
