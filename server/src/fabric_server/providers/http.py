"""Calling a provider's HTTP API: bounded, jittered retries and one error mapping.

* Connection failures and 5xx answers (including Anthropic's 529 "overloaded") are retried up
  to `max_retries` times with full-jitter exponential backoff, then become `UpstreamError`.
* A read timeout is not retried (the upstream may have done — and billed — the work) and
  becomes `UpstreamTimeout`; a connect timeout sent nothing and is retried like a refusal.
* 401/403 become `ProviderAuthFailed`, 429 `ProviderRateLimited` with the upstream's
  `Retry-After`, any other 4xx `ProviderRejected` carrying the upstream's own explanation.

Streaming calls (`stream_post`) get the same treatment up to the response headers; once
the body is flowing, nothing is retried: part of the answer has already been passed on.

Endpoints the operator configured (`trusted_origins`) are called directly. Any other — one an
organization chose — goes through `guard` with connection pinning: its name is resolved and
every address checked right before connecting, to the checked address, so a name cannot
point inside the server's network, not even by changing between check and connect.

Request headers (credentials) are never logged or put in an error.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from fabric_server.net.guard import AddressGuard, BlockedAddress
from fabric_server.net.http import PinnedTransport
from fabric_server.providers.errors import (
    ProviderAuthFailed,
    ProviderError,
    ProviderNotConfigured,
    ProviderRateLimited,
    ProviderRejected,
    UpstreamError,
    UpstreamTimeout,
)

log = logging.getLogger("fabric_server.providers")

_BACKOFF_CAP_SECONDS = 8.0
_DEFAULT_RETRY_AFTER = 1
_MAX_RETRY_AFTER = 3600
_MAX_UPSTREAM_MESSAGE = 500
_RETRY_CONNECT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError)


@dataclass(frozen=True)
class Upstream:
    """Who we are calling, for error messages: `label` names it, `key_name` is its secret."""

    provider_id: str
    label: str
    key_name: str


@dataclass(frozen=True)
class Multipart:
    """A multipart/form-data body: plain fields, and files as (filename, content, type)."""

    fields: Mapping[str, str]
    files: Mapping[str, tuple[str, bytes, str]]


@dataclass(frozen=True)
class BinaryReply:
    """A successful answer that is not JSON (generated audio): its bytes and media type."""

    content: bytes
    content_type: str | None


@dataclass
class UpstreamClient:
    timeout: float = 60.0
    max_retries: int = 2
    retry_base: float = 0.5
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    rng: Callable[[], float] = field(default=random.random, repr=False)
    # Without a guard every endpoint is called directly (adapters check literal addresses).
    guard: AddressGuard | None = None
    trusted_origins: frozenset[str] = frozenset()
    _client: httpx.AsyncClient | None = field(default=None, repr=False)
    _pinned: httpx.AsyncClient | None = field(default=None, repr=False)

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            # Redirects are not followed: a provider API never needs one, and following
            # them would carry credentials to wherever a server points.
            self._client = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
        return self._client

    def client_for(self, url: str) -> httpx.AsyncClient:
        """The direct client for a trusted endpoint, else the guarded, pinned one."""
        if self.guard is None or origin_of(url) in self.trusted_origins:
            return self.client
        if self._pinned is None:
            self._pinned = httpx.AsyncClient(
                timeout=self.timeout,
                follow_redirects=False,
                trust_env=False,
                transport=PinnedTransport(self.guard),
            )
        return self._pinned

    async def aclose(self) -> None:
        for client in (self._client, self._pinned):
            if client is not None:
                await client.aclose()
        self._client = self._pinned = None

    async def post_json(
        self, upstream: Upstream, url: str, headers: Mapping[str, str], body: dict[str, Any]
    ) -> dict[str, Any]:
        """POST `body`; the decoded JSON object of a 2xx answer, else a `ProviderError`."""
        response = await self._send(upstream, "POST", url, headers, {"json": body})
        return _json_object(upstream, response)

    async def post_multipart(
        self, upstream: Upstream, url: str, headers: Mapping[str, str], form: Multipart
    ) -> dict[str, Any]:
        """POST `form` as multipart/form-data (an upload); the JSON object of the answer."""
        content = {"data": dict(form.fields), "files": dict(form.files)}
        response = await self._send(upstream, "POST", url, headers, content)
        return _json_object(upstream, response)

    async def post_for_bytes(
        self, upstream: Upstream, url: str, headers: Mapping[str, str], body: dict[str, Any]
    ) -> BinaryReply:
        """POST `body`; the raw content of a 2xx answer (errors are still read as JSON)."""
        response = await self._send(upstream, "POST", url, headers, {"json": body})
        if not response.content:
            raise UpstreamError(
                f"The {upstream.label} API answered with an empty body.",
                provider_id=upstream.provider_id,
            )
        return BinaryReply(response.content, response.headers.get("content-type"))

    @asynccontextmanager
    async def stream_post(
        self, upstream: Upstream, url: str, headers: Mapping[str, str], body: dict[str, Any]
    ) -> AsyncIterator[httpx.Response]:
        """POST `body` and hold the 2xx response open while its body is read."""
        response = await self._send(upstream, "POST", url, headers, {"json": body}, stream=True)
        try:
            yield response
        finally:
            await response.aclose()

    async def get(self, upstream: Upstream, url: str, headers: Mapping[str, str]) -> None:
        """GET `url` without retries (a health check); raises a `ProviderError` on failure."""
        await self._send(upstream, "GET", url, headers, {}, retries=0)

    async def _send(
        self,
        upstream: Upstream,
        method: str,
        url: str,
        headers: Mapping[str, str],
        content: Mapping[str, Any],
        *,
        retries: int | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """`content` holds httpx's body arguments (`json`, or `data` and `files`); they are
        sent again, unchanged, on every retry."""
        budget = self.max_retries if retries is None else retries
        client = self.client_for(url)
        attempt = 0
        while True:
            try:
                request = client.build_request(method, url, headers=headers, **content)
                response = await client.send(request, stream=stream)
                if stream and not response.is_success:
                    try:
                        await response.aread()  # the error body explains the failure
                    finally:
                        await response.aclose()
            except _RETRY_CONNECT_ERRORS as exc:
                failure: ProviderError = UpstreamError(
                    f"Could not reach the {upstream.label} API ({type(exc).__name__}).",
                    provider_id=upstream.provider_id,
                )
                delay = None
            except BlockedAddress as exc:
                raise ProviderNotConfigured(
                    f"The {upstream.label} endpoint an organization set points at a private "
                    f"or reserved address ({exc}), which this server refuses (the operator "
                    "can allow it with FABRIC_ALLOW_PRIVATE_PROVIDER_URLS).",
                    provider_id=upstream.provider_id,
                ) from None
            except httpx.TimeoutException as exc:
                raise UpstreamTimeout(
                    f"The {upstream.label} API did not answer within {self.timeout:g} s.",
                    provider_id=upstream.provider_id,
                ) from exc
            except httpx.HTTPError as exc:
                raise UpstreamError(
                    f"The call to the {upstream.label} API failed ({type(exc).__name__}).",
                    provider_id=upstream.provider_id,
                ) from exc
            else:
                if response.is_success:
                    return response
                failure = error_for_response(upstream, response)
                if not isinstance(failure, UpstreamError):
                    log.warning(
                        "%s answered HTTP %s (%s)",
                        upstream.provider_id,
                        response.status_code,
                        failure.code,
                    )
                    raise failure
                delay = retry_after_seconds(response.headers)
            log.warning(
                "%s call failed (attempt %d of %d): %s",
                upstream.provider_id,
                attempt + 1,
                budget + 1,
                failure.message,
            )
            if attempt >= budget:
                raise failure
            attempt += 1
            await self.sleep(self._backoff(attempt, delay))

    def _backoff(self, attempt: int, retry_after: int | None) -> float:
        if retry_after is not None and retry_after <= _BACKOFF_CAP_SECONDS:
            return float(retry_after)
        ceiling = min(_BACKOFF_CAP_SECONDS, self.retry_base * 2.0 ** (attempt - 1))
        return self.rng() * ceiling


def origin_of(url: str) -> str:
    """`scheme://host:port` of a URL (the port spelled out), for comparing endpoints."""
    parsed = httpx.URL(url)
    port = parsed.port or {"http": 80, "https": 443}.get(parsed.scheme, 0)
    return f"{parsed.scheme}://{parsed.host}:{port}"


def _json_object(upstream: Upstream, response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise UpstreamError(
            f"The {upstream.label} API answered with something other than a JSON object.",
            provider_id=upstream.provider_id,
        )
    return data


def error_for_response(upstream: Upstream, response: httpx.Response) -> ProviderError:
    status = response.status_code
    pid = upstream.provider_id
    if status in (401, 403):
        # The upstream's own text may quote part of the key: it is not passed on.
        return ProviderAuthFailed(
            f"The {upstream.label} API refused the credentials (HTTP {status}): check the "
            f"{upstream.key_name} secret (or the server's FABRIC_{upstream.key_name}).",
            provider_id=pid,
        )
    if status == 429:
        retry_after = retry_after_seconds(response.headers) or _DEFAULT_RETRY_AFTER
        return ProviderRateLimited(
            f"The {upstream.label} API is rate limiting these requests; retry in {retry_after} s.",
            retry_after=retry_after,
            provider_id=pid,
        )
    if status == 408:
        return UpstreamTimeout(f"The {upstream.label} API timed out (HTTP 408).", provider_id=pid)
    explanation = upstream_message(response)
    if 400 <= status < 500:
        return ProviderRejected(
            f"The {upstream.label} API rejected the request (HTTP {status})"
            + (f": {explanation}" if explanation else "."),
            provider_id=pid,
            details={"upstream_status": status},
        )
    return UpstreamError(
        f"The {upstream.label} API failed (HTTP {status}).",
        provider_id=pid,
        details={"upstream_status": status},
    )


def upstream_message(response: httpx.Response) -> str | None:
    """The human explanation in an OpenAI- or Anthropic-style error body, shortened."""
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    if not isinstance(message, str) or not message.strip():
        return None
    return message.strip()[:_MAX_UPSTREAM_MESSAGE]


def retry_after_seconds(headers: httpx.Headers) -> int | None:
    """`Retry-After` (or OpenAI's `retry-after-ms`) as whole seconds, if present and sane."""
    raw = headers.get("retry-after")
    seconds: float | None = None
    try:
        if raw is not None:
            seconds = float(raw)
        elif headers.get("retry-after-ms") is not None:
            seconds = float(headers["retry-after-ms"]) / 1000
    except ValueError:
        return None
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return None
    return min(_MAX_RETRY_AFTER, max(1, math.ceil(seconds)))
