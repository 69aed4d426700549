"""The engine shared by both clients: configuration, request building, envelope unwrapping,
retry decisions and error mapping. Nothing here performs I/O; `_core` adds the sending and the
sleeping, once for the sync client and once for the async one.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Optional, TypeVar, Union
from urllib.parse import quote

import httpx

from ._errors import (
    FabricAPIError,
    FabricAuthError,
    FabricBudgetExceededError,
    FabricClientClosedError,
    FabricConflictError,
    FabricConnectionError,
    FabricError,
    FabricForbiddenError,
    FabricNotFoundError,
    FabricRateLimitError,
    FabricServerError,
    FabricTimeoutError,
    FabricValidationError,
)
from ._tracecontext import trace_headers
from ._version import __version__

DEFAULT_BASE_URL = "http://localhost:3001"
DEFAULT_ORGANIZATION_ID = "00000000-0000-0000-0000-000000000010"
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 2
# The server sends a keep-alive comment every ~15 s, so an idle but healthy stream must not be
# cut by the ordinary read timeout.
STREAM_MIN_READ_TIMEOUT = 60.0
USER_AGENT = f"fabric-platform/{__version__}"
REFRESH_PATH = "/v1/auth/token/refresh"

# Every httpx exception a send or a body read can raise; none may cross the SDK boundary.
HTTPX_ERRORS = (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError)

_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# Failures that happen before a single byte of the request left the machine: resending is safe
# whatever the method.
_NOTHING_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

_ERROR_CLASSES: dict[int, type[FabricAPIError]] = {
    400: FabricValidationError,
    401: FabricAuthError,
    402: FabricBudgetExceededError,
    403: FabricForbiddenError,
    404: FabricNotFoundError,
    409: FabricConflictError,
    422: FabricValidationError,
    429: FabricRateLimitError,
}

HttpClientT = TypeVar("HttpClientT", httpx.Client, httpx.AsyncClient)
QueryValue = Union[str, int, float, bool, None]


@dataclass(frozen=True)
class ClientConfig:
    """Settings resolved once, when a client is built: argument, then environment, then default.

    ``organization_id`` is None when the client has an API key and was given no organization:
    the server then acts in the key's organization, which the client learns when a route needs
    it in its path (see `BaseClient.organization_id`).
    """

    base_url: str
    api_key: Optional[str]
    principal_id: Optional[str]
    organization_id: Optional[str]
    timeout: float
    max_retries: int

    @classmethod
    def resolve(
        cls,
        *,
        base_url: Optional[str],
        api_key: Optional[str],
        principal_id: Optional[str],
        organization_id: Optional[str],
        timeout: float,
        max_retries: int,
    ) -> ClientConfig:
        if base_url is None:
            base_url = os.environ.get("FABRIC_BASE_URL") or DEFAULT_BASE_URL
        if api_key is None:
            api_key = os.environ.get("FABRIC_API_KEY")
        if organization_id is None:
            organization_id = os.environ.get("FABRIC_ORGANIZATION_ID")
        if not organization_id and not api_key:
            # Without credentials of its own the client is the dev owner (or a principal id),
            # whose organization is the default one the dev server seeds.
            organization_id = DEFAULT_ORGANIZATION_ID
        if not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be a non-negative integer, got {max_retries!r}")
        return cls(
            base_url=base_url.rstrip("/"),
            api_key=api_key or None,
            principal_id=principal_id or None,
            organization_id=organization_id or None,
            timeout=float(timeout),
            max_retries=max_retries,
        )


@dataclass(frozen=True)
class RequestOptions:
    """One logical API call, before it becomes an `httpx.Request`."""

    method: str
    path: str
    params: Optional[Mapping[str, QueryValue]] = None
    body: Any = None
    idempotency_key: Optional[str] = None
    headers: Optional[Mapping[str, str]] = None
    # Seconds the server may hold the request before answering (a long wait): added to the
    # read timeout.
    held: float = 0.0


@dataclass
class RetryPolicy:
    """Decides whether a failed attempt is retried, and after how long.

    Backoff is exponential with full jitter (a random wait between 0 and
    ``min(cap, base * 2**attempt)``) so that many clients failing together do not return
    together. A ``Retry-After`` from the server is obeyed exactly when it is within
    `retry_after_cap`; a longer one ends the retries at once, because retrying earlier than the
    server asked would only fail again.
    """

    max_retries: int
    backoff_base: float = 0.5
    backoff_cap: float = 8.0
    retry_after_cap: float = 30.0
    rng: Callable[[], float] = field(default=random.random, repr=False)

    def backoff(self, attempt: int) -> float:
        """A jittered wait before retry number ``attempt + 1``."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2.0 ** min(attempt, 32))
        return self.rng() * ceiling

    def wait(self, attempt: int, retry_after: Optional[float]) -> Optional[float]:
        """The wait before the next attempt, or None when the server asked for too long."""
        if retry_after is None:
            return self.backoff(attempt)
        if retry_after > self.retry_after_cap:
            return None
        return retry_after

    def delay_after_response(
        self, options: RequestOptions, attempt: int, response: httpx.Response
    ) -> Optional[float]:
        """Seconds to wait before resending after ``response``, or None to keep the response."""
        if attempt >= self.max_retries or not is_retryable_status(response.status_code):
            return None
        if not _may_resend(options):
            return None
        return self.wait(attempt, parse_retry_after(response.headers))

    def delay_after_error(
        self, options: RequestOptions, attempt: int, error: Exception
    ) -> Optional[float]:
        """Seconds to wait before resending after a transport error, or None to give up."""
        if attempt >= self.max_retries or not isinstance(error, httpx.TransportError):
            return None
        if not (_may_resend(options) or isinstance(error, _NOTHING_SENT_ERRORS)):
            return None
        return self.backoff(attempt)


def _may_resend(options: RequestOptions) -> bool:
    # A POST/PATCH may have been applied before the failure; only an idempotency key lets the
    # server recognise the resend as the same call.
    return options.method in _IDEMPOTENT_METHODS or options.idempotency_key is not None


def is_retryable_status(status_code: int) -> bool:
    return status_code in (408, 429) or 500 <= status_code <= 599


def parse_retry_after(headers: httpx.Headers) -> Optional[float]:
    """``Retry-After`` in seconds; only the delta-seconds form is understood (wire-spec §3.4)."""
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:  # the HTTP-date form, or garbage
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def wrap_httpx_error(error: Exception) -> FabricError:
    """The SDK exception that stands for an httpx exception (raise it ``from`` the original)."""
    detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    if not isinstance(error, httpx.RequestError):
        return FabricError(f"HTTP client error ({detail})")
    try:
        target = f" ({error.request.method} {error.request.url})"
    except RuntimeError:  # httpx raises this when the error was made without a request
        target = ""
    if isinstance(error, httpx.TimeoutException):
        return FabricTimeoutError(f"timed out talking to the Fabric server{target}: {detail}")
    return FabricConnectionError(f"could not talk to the Fabric server{target}: {detail}")


def _decode_json(content: bytes) -> Any:
    if not content.strip():
        return None
    try:
        return json.loads(content)
    except ValueError:
        return None


def api_error_from_response(response: httpx.Response) -> FabricAPIError:
    """The typed exception for a non-2xx ``response`` whose body has been read."""
    body = _decode_json(response.content)
    return api_error_from_envelope(
        body if isinstance(body, dict) else {},
        response.status_code,
        request_id=response.headers.get("x-request-id"),
        retry_after=parse_retry_after(response.headers),
        response=response,
    )


def api_error_from_envelope(
    envelope: Mapping[str, Any],
    status: int,
    *,
    request_id: Optional[str] = None,
    retry_after: Optional[float] = None,
    response: Optional[httpx.Response] = None,
) -> FabricAPIError:
    """The typed exception for an error envelope (wire-spec §3.2) answered with ``status``."""
    error = envelope.get("error")
    error = error if isinstance(error, dict) else {}
    meta = envelope.get("meta")
    meta = meta if isinstance(meta, dict) else {}

    message = error.get("message")
    if not isinstance(message, str) or not message:
        message = f"HTTP {status}"
    code = error.get("code")
    request_id = meta.get("request_id") or request_id
    details = error.get("details")
    kwargs: dict[str, Any] = {
        "status_code": status,
        "code": code if isinstance(code, str) else None,
        "request_id": request_id if isinstance(request_id, str) else None,
        "details": details if isinstance(details, dict) else None,
        "response": response,
    }
    if status == 429:
        return FabricRateLimitError(message, retry_after=retry_after, **kwargs)
    if 500 <= status <= 599:
        return FabricServerError(message, **kwargs)
    return _ERROR_CLASSES.get(status, FabricAPIError)(message, **kwargs)


def unwrap_response(response: httpx.Response) -> Any:
    """The payload of a read response (wire-spec §3.1), or the typed error for a non-2xx one.

    Empty or non-JSON bodies give None, a JSON object gives its ``data`` member, and any other
    JSON value is returned as it is.
    """
    if not response.is_success:
        raise api_error_from_response(response)
    body = _decode_json(response.content)
    if isinstance(body, dict):
        return body.get("data")
    return body


def encode_path(template: str, *ids: str) -> str:
    """``template`` with each ``{}`` replaced by a percent-encoded, non-empty identifier."""
    for value in ids:
        if not isinstance(value, str) or not value:
            raise ValueError(f"identifiers must be non-empty strings, got {value!r}")
    return template.format(*(quote(value, safe="") for value in ids))


def query(**values: QueryValue) -> dict[str, QueryValue]:
    """Query parameters without the unset (None) ones; booleans spelled ``true``/``false``."""
    params: dict[str, QueryValue] = {}
    for name, value in values.items():
        if value is None:
            continue
        params[name] = ("true" if value else "false") if isinstance(value, bool) else value
    return params


def _only_organization(organizations: Any) -> Optional[str]:
    ids = [
        o["id"]
        for o in organizations or []
        if isinstance(o, dict) and isinstance(o.get("id"), str) and o["id"]
    ]
    if DEFAULT_ORGANIZATION_ID in ids:
        return DEFAULT_ORGANIZATION_ID
    return ids[0] if len(ids) == 1 else None


class BaseClient(Generic[HttpClientT]):
    """State and request building common to the sync and the async client."""

    _http: HttpClientT

    def __init__(self, config: ClientConfig, http: HttpClientT, *, owns_http: bool) -> None:
        self._config = config
        self._http = http
        self._owns_http = owns_http
        self._closed = False
        self._retry = RetryPolicy(max_retries=config.max_retries)
        # Wall-clock seconds: token expiry is absolute (a JWT ``exp``). Replaceable in tests.
        self._clock: Callable[[], float] = time.time
        # The organization the server acts in for these credentials, once asked (see
        # `organization_id`); forgotten when the client logs in or out.
        self._learned_organization_id: Optional[str] = None

    @property
    def base_url(self) -> str:
        """The API root every path is appended to, without a trailing slash."""
        return self._config.base_url

    @property
    def organization_id(self) -> Optional[str]:
        """The organization used by calls that take no explicit one, or None while unknown.

        It is the one given (argument or ``FABRIC_ORGANIZATION_ID``); else, without an API key,
        the default organization; else the API key's, once a call whose route names the
        organization (the secrets) has asked the server. While unknown, calls leave it out
        and the server acts in the key's organization.
        """
        return self._config.organization_id or self._learned_organization_id

    def _remember_organization(self, me: Any, my_organizations: Any) -> str:
        """The organization the server picks for calls that name none, from the caller's
        identity (``GET /v1/me``) and, when that has none, its organizations: the default
        one if visible, else the only one. Raises `FabricError` when that is ambiguous."""
        org_id = me.get("organization_id") if isinstance(me, dict) else None
        if not isinstance(org_id, str) or not org_id:
            org_id = _only_organization(my_organizations)
        if org_id is None:
            raise FabricError(
                "cannot tell which organization to act in: pass organization_id to the client "
                "(or set FABRIC_ORGANIZATION_ID)"
            )
        self._learned_organization_id = org_id
        return org_id

    @property
    def principal_id(self) -> Optional[str]:
        return self._config.principal_id

    @property
    def timeout(self) -> float:
        return self._config.timeout

    @property
    def max_retries(self) -> int:
        return self._config.max_retries

    @property
    def is_closed(self) -> bool:
        """True once `close()` was called (or the underlying httpx client was closed)."""
        return self._closed or self._http.is_closed

    def _check_open(self) -> None:
        if self.is_closed:
            raise FabricClientClosedError(
                f"this {type(self).__name__} is closed; create a new client to keep going"
            )

    def _headers(self, options: RequestOptions) -> dict[str, str]:
        # ``Authorization`` is not set here: the auth flow of `_auth` signs each send.
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        if self._config.principal_id is not None:
            headers["X-Principal-Id"] = self._config.principal_id
        if options.idempotency_key is not None:
            headers["Idempotency-Key"] = options.idempotency_key
        headers.update(trace_headers())
        if options.headers:
            headers.update(options.headers)
        return headers

    def _build_request(self, options: RequestOptions, *, stream: bool = False) -> httpx.Request:
        """The request for ``options``; it can be sent again, unchanged, on every retry."""
        content = None
        if options.body is not None:
            content = json.dumps(
                options.body, separators=(",", ":"), ensure_ascii=False, allow_nan=False
            ).encode("utf-8")
        timeout = httpx.Timeout(self._config.timeout)
        if options.held:
            timeout = httpx.Timeout(self._config.timeout, read=self._config.timeout + options.held)
        if stream:
            timeout = httpx.Timeout(
                self._config.timeout, read=max(self._config.timeout, STREAM_MIN_READ_TIMEOUT)
            )
        return self._http.build_request(
            options.method,
            self._config.base_url + options.path,
            params=dict(options.params) if options.params else None,
            headers=self._headers(options),
            content=content,
            timeout=timeout,
        )

    def _refresh_request(self, refresh_token: str) -> httpx.Request:
        """The token refresh call, as the auth flow sends it (unsigned, never retried)."""
        body = {"refresh_token": refresh_token}
        return self._build_request(RequestOptions("POST", REFRESH_PATH, body=body))

    def _stream_options(
        self, path: str, params: Optional[Mapping[str, QueryValue]], last_event_id: Optional[str]
    ) -> RequestOptions:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        return RequestOptions("GET", path, params=params, headers=headers)
