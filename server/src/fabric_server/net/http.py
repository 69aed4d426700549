"""An outbound HTTP client that only connects to addresses the `AddressGuard` allows.

Host names are resolved here, every resolved address is checked, and the connection is made
to a checked address — never re-resolved — so DNS rebinding cannot slip a private address in
between check and connect. TLS still verifies the certificate for (and sends SNI of) the host
name in the URL. Redirects are never followed, proxies from the environment are ignored, and
only the first `max_body` bytes of an answer are read.

`PinnedTransport` gives httpx clients the same guarantee (provider calls to endpoints an
organization chose).

Outbound calls made while a trace span is current (a traced work item: a webhook delivery, an
`http.request` node) carry its W3C `traceparent`, so the receiver can join the trace; with
tracing off no span is current and nothing is added.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx
from opentelemetry import propagate

from fabric_server.net.guard import AddressGuard, BlockedAddress, IPAddress


def trace_headers() -> dict[str, str]:
    """The current span's trace context as headers (empty when no span is current)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


@dataclass(frozen=True)
class OutboundResponse:
    status: int
    headers: dict[str, str]
    body: bytes  # at most `max_body` bytes


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks, then connects to the checked address."""

    def __init__(self, guard: AddressGuard) -> None:
        self.guard = guard
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await _resolve(host, port)
        for address in addresses:  # every answer must pass, not just the first
            self.guard.check_address(address, host)
        error: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedAddress("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


async def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc.strerror}") from exc
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise httpcore.ConnectError(f"cannot resolve {host}: no addresses")
    return addresses


class PinnedTransport(httpx.AsyncHTTPTransport):
    """An httpx transport that connects only to addresses `guard` allows: each host name is
    resolved, every address checked, and the connection made to a checked address (never
    re-resolved). Proxies from the environment are never used; `BlockedAddress` is raised
    for a refused target."""

    def __init__(self, guard: AddressGuard, *, limits: httpx.Limits | None = None) -> None:
        limits = limits or httpx.Limits()
        super().__init__(trust_env=False, limits=limits)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(guard),
        )


class OutboundClient:
    """A pooled client for guarded requests; `aclose` it on shutdown."""

    def __init__(self, guard: AddressGuard, *, max_connections: int = 50) -> None:
        self.guard = guard
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl.create_default_context(),
            max_connections=max_connections,
            keepalive_expiry=30.0,
            network_backend=GuardedBackend(guard),
        )

    async def post(
        self,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        timeout: float,
        max_body: int = 1024,
    ) -> OutboundResponse:
        """POST `body`; raises `BlockedAddress`, `httpcore` errors or `TimeoutError`.

        `timeout` bounds the whole exchange: resolving, connecting, sending and reading.
        """
        self.guard.check_url(url, names=False)  # names are checked once resolved
        async with asyncio.timeout(timeout):
            sent = {**trace_headers(), **headers}
            request_headers = [(k.encode(), v.encode()) for k, v in sent.items()]
            limits = {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}
            async with self._pool.stream(
                "POST", url, headers=request_headers, content=body, extensions={"timeout": limits}
            ) as response:
                received = bytearray()
                async for chunk in response.aiter_stream():
                    received += chunk
                    if len(received) >= max_body:
                        break
            headers_out = {
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.headers
            }
            return OutboundResponse(response.status, headers_out, bytes(received[:max_body]))

    async def aclose(self) -> None:
        await self._pool.aclose()
