"""The I/O halves of the engine: sending with retries, sleeping, opening streams.

`SyncClientCore` and `AsyncClientCore` differ only in ``await``; everything they decide is
delegated to `_base` (retry policy, request building, unwrapping, error mapping). API methods
live in per-domain mixins built on these cores (e.g. `_jobs`), which `_client` composes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Mapping
from types import TracebackType
from typing import Any, Callable, Optional, TypeVar

import httpx

from ._auth import Credentials
from ._base import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    HTTPX_ERRORS,
    BaseClient,
    ClientConfig,
    QueryValue,
    RequestOptions,
    api_error_from_response,
    unwrap_response,
    wrap_httpx_error,
)
from ._streaming import DEFAULT_MAX_STREAM_FAILURES, AsyncEventStream, EventStream, StreamState

_SyncT = TypeVar("_SyncT", bound="SyncClientCore")
_AsyncT = TypeVar("_AsyncT", bound="AsyncClientCore")


def _check_injection(http_client: object, transport: object, expected: type) -> None:
    if http_client is not None and transport is not None:
        raise ValueError("pass either http_client or transport, not both")
    if http_client is not None and not isinstance(http_client, expected):
        raise TypeError(f"http_client must be an {expected.__module__}.{expected.__name__}")


class SyncClientCore(BaseClient[httpx.Client]):
    """Constructor, lifecycle and sending for `FabricClient`."""

    def __init__(
        self,
        base_url: Optional[str] = None,
        api_key: Optional[str] = None,
        principal_id: Optional[str] = None,
        organization_id: Optional[str] = None,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: Optional[httpx.Client] = None,
        transport: Optional[httpx.BaseTransport] = None,
    ) -> None:
        config = ClientConfig.resolve(
            base_url=base_url,
            api_key=api_key,
            principal_id=principal_id,
            organization_id=organization_id,
            timeout=timeout,
            max_retries=max_retries,
        )
        _check_injection(http_client, transport, httpx.Client)
        owns_http = http_client is None
        if http_client is None:
            http_client = httpx.Client(transport=transport, timeout=config.timeout)
        super().__init__(config, http_client, owns_http=owns_http)
        self._credentials = Credentials(
            config.api_key, lambda: self._clock(), self._refresh_request
        )
        # Replaceable so that tests (and callers with their own scheduling) need not really wait.
        self._sleep: Callable[[float], None] = time.sleep

    def close(self) -> None:
        """Release the connections; later calls raise `FabricClientClosedError`.

        An ``http_client`` passed in by the caller is left open: it belongs to the caller.
        """
        self._closed = True
        if self._owns_http:
            self._http.close()

    def __enter__(self: _SyncT) -> _SyncT:
        self._check_open()
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Optional[Mapping[str, QueryValue]] = None,
        body: Any = None,
        idempotency_key: Optional[str] = None,
        refresh_auth: bool = True,
        held: float = 0.0,
    ) -> Any:
        """Send one API call, retrying when the policy allows; return the unwrapped payload.

        ``refresh_auth=False`` (the auth endpoints) signs the call without ever refreshing;
        ``held`` is how long the server may hold it before answering (a long wait).
        """
        options = RequestOptions(method, path, params, body, idempotency_key, held=held)
        request = self._build_request(options)
        creds = self._credentials
        auth = creds.refreshing if refresh_auth else creds.signing
        attempt = 0
        while True:
            self._check_open()
            try:
                response = self._http.send(request, auth=auth)
            except HTTPX_ERRORS as exc:
                delay = self._retry.delay_after_error(options, attempt, exc)
                if delay is None:
                    raise wrap_httpx_error(exc) from exc
            else:
                delay = self._retry.delay_after_response(options, attempt, response)
                if delay is None:
                    return unwrap_response(response)
            attempt += 1
            self._sleep(delay)

    def _path_organization_id(self) -> str:
        """The organization for a route that names it in its path: the known one, else the
        one the server acts in for these credentials (asked once, then remembered)."""
        known = self.organization_id
        if known is not None:
            return known
        me = self._request("GET", "/v1/me")
        if isinstance(me, dict) and me.get("organization_id"):
            return self._remember_organization(me, None)
        return self._remember_organization(me, self._request("GET", "/v1/me/organizations"))

    def _stream(
        self,
        path: str,
        params: Optional[Mapping[str, QueryValue]] = None,
        *,
        terminal_kinds: frozenset[str] = frozenset(),
        max_failures: int = DEFAULT_MAX_STREAM_FAILURES,
    ) -> EventStream:
        """A lazy event stream over the SSE endpoint ``path``, ending after a terminal kind."""
        self._check_open()
        state = StreamState(
            terminal_kinds=terminal_kinds, max_failures=max_failures, policy=self._retry
        )
        return EventStream(
            lambda last_event_id: self._open_stream(path, params, last_event_id),
            lambda seconds: self._sleep(seconds),
            state,
        )

    def _open_stream(
        self,
        path: str,
        params: Optional[Mapping[str, QueryValue]],
        last_event_id: Optional[str],
    ) -> httpx.Response:
        return self._send_stream(self._stream_options(path, params, last_event_id))

    def _open_post_stream(self, path: str, body: Any) -> httpx.Response:
        """POST ``body`` to an SSE endpoint, once (what it starts is not safe to repeat)."""
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        return self._send_stream(RequestOptions("POST", path, body=body, headers=headers))

    def _send_stream(self, options: RequestOptions) -> httpx.Response:
        self._check_open()
        request = self._build_request(options, stream=True)
        try:
            response = self._http.send(request, stream=True, auth=self._credentials.refreshing)
        except HTTPX_ERRORS as exc:
            raise wrap_httpx_error(exc) from exc
        if response.is_success:
            return response
        try:
            response.read()
        except HTTPX_ERRORS as exc:
            raise wrap_httpx_error(exc) from exc
        finally:
            response.close()
        raise api_error_from_response(response)


class AsyncClientCore(BaseClient[httpx.AsyncClient]):
    """Constructor, lifecycle and sending for `AsyncFabricClient`."""

    def __init__(
        self,
        base_url: Optional[str] = None,
        api_key: Optional[str] = None,
        principal_id: Optional[str] = None,
        organization_id: Optional[str] = None,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: Optional[httpx.AsyncClient] = None,
        transport: Optional[httpx.AsyncBaseTransport] = None,
    ) -> None:
        config = ClientConfig.resolve(
            base_url=base_url,
            api_key=api_key,
            principal_id=principal_id,
            organization_id=organization_id,
            timeout=timeout,
            max_retries=max_retries,
        )
        _check_injection(http_client, transport, httpx.AsyncClient)
        owns_http = http_client is None
        if http_client is None:
            http_client = httpx.AsyncClient(transport=transport, timeout=config.timeout)
        super().__init__(config, http_client, owns_http=owns_http)
        self._credentials = Credentials(
            config.api_key, lambda: self._clock(), self._refresh_request
        )
        # Replaceable so that tests (and callers with their own scheduling) need not really wait.
        self._sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    async def close(self) -> None:
        """Release the connections; later calls raise `FabricClientClosedError`.

        An ``http_client`` passed in by the caller is left open: it belongs to the caller.
        """
        self._closed = True
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self: _AsyncT) -> _AsyncT:
        self._check_open()
        return self

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.close()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Optional[Mapping[str, QueryValue]] = None,
        body: Any = None,
        idempotency_key: Optional[str] = None,
        refresh_auth: bool = True,
        held: float = 0.0,
    ) -> Any:
        """Send one API call, retrying when the policy allows; return the unwrapped payload.

        ``refresh_auth=False`` (the auth endpoints) signs the call without ever refreshing;
        ``held`` is how long the server may hold it before answering (a long wait).
        """
        options = RequestOptions(method, path, params, body, idempotency_key, held=held)
        request = self._build_request(options)
        creds = self._credentials
        auth = creds.refreshing if refresh_auth else creds.signing
        attempt = 0
        while True:
            self._check_open()
            try:
                response = await self._http.send(request, auth=auth)
            except HTTPX_ERRORS as exc:
                delay = self._retry.delay_after_error(options, attempt, exc)
                if delay is None:
                    raise wrap_httpx_error(exc) from exc
            else:
                delay = self._retry.delay_after_response(options, attempt, response)
                if delay is None:
                    return unwrap_response(response)
            attempt += 1
            await self._sleep(delay)

    async def _path_organization_id(self) -> str:
        """The organization for a route that names it in its path (see the sync client)."""
        known = self.organization_id
        if known is not None:
            return known
        # Two tasks asking at once both learn the same answer: no lock is needed.
        me = await self._request("GET", "/v1/me")
        if isinstance(me, dict) and me.get("organization_id"):
            return self._remember_organization(me, None)
        organizations = await self._request("GET", "/v1/me/organizations")
        return self._remember_organization(me, organizations)

    def _stream(
        self,
        path: str,
        params: Optional[Mapping[str, QueryValue]] = None,
        *,
        terminal_kinds: frozenset[str] = frozenset(),
        max_failures: int = DEFAULT_MAX_STREAM_FAILURES,
    ) -> AsyncEventStream:
        """A lazy event stream over the SSE endpoint ``path``, ending after a terminal kind."""
        self._check_open()
        state = StreamState(
            terminal_kinds=terminal_kinds, max_failures=max_failures, policy=self._retry
        )
        return AsyncEventStream(
            lambda last_event_id: self._open_stream(path, params, last_event_id),
            lambda seconds: self._sleep(seconds),
            state,
        )

    async def _open_stream(
        self,
        path: str,
        params: Optional[Mapping[str, QueryValue]],
        last_event_id: Optional[str],
    ) -> httpx.Response:
        return await self._send_stream(self._stream_options(path, params, last_event_id))

    async def _open_post_stream(self, path: str, body: Any) -> httpx.Response:
        """POST ``body`` to an SSE endpoint, once (what it starts is not safe to repeat)."""
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        return await self._send_stream(RequestOptions("POST", path, body=body, headers=headers))

    async def _send_stream(self, options: RequestOptions) -> httpx.Response:
        self._check_open()
        request = self._build_request(options, stream=True)
        try:
            response = await self._http.send(
                request, stream=True, auth=self._credentials.refreshing
            )
        except HTTPX_ERRORS as exc:
            raise wrap_httpx_error(exc) from exc
        if response.is_success:
            return response
        try:
            await response.aread()
        except HTTPX_ERRORS as exc:
            raise wrap_httpx_error(exc) from exc
        finally:
            await response.aclose()
        raise api_error_from_response(response)
