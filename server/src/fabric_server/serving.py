"""uvicorn as the server runs it: the API, and the probe listener of worker-only processes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn

from fabric_server.app import create_probe_app
from fabric_server.services import Services
from fabric_server.settings import Settings
from fabric_server.slow_clients import protocol_class

log = logging.getLogger("fabric_server")


def connection_options(settings: Settings) -> dict[str, Any]:
    """uvicorn options for the API's connections: deadlines for slow clients, the head size
    limit, the idle keep-alive time, and which peers' forwarded headers are believed."""
    return {
        "http": protocol_class(
            head_seconds=settings.http_header_timeout_seconds,
            body_idle_seconds=settings.http_body_idle_timeout_seconds,
            max_head_bytes=settings.http_max_header_bytes,
        ),
        "h11_max_incomplete_event_size": settings.http_max_header_bytes,
        # X-Forwarded-* are believed from the configured proxies only, never by default.
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": list(settings.trusted_proxies),
        "timeout_keep_alive": settings.http_keep_alive_seconds,
    }


class FabricServer(uvicorn.Server):
    """uvicorn that tells the app as soon as it begins to stop (`on_shutdown`), before it
    waits for open connections: event streams would otherwise hold it for the whole grace
    period, and workers would only start draining after that."""

    def __init__(self, config: uvicorn.Config, on_shutdown: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_shutdown = on_shutdown

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        for sock in sockets or []:
            host, port = sock.getsockname()[:2]
            shown = f"[{host}]" if ":" in host else host
            log.info("Fabric API listening on http://%s:%d (CTRL+C to stop)", shown, port)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._on_shutdown()
        await super().shutdown(sockets)


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn running inside a process that handles its signals itself."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ProbeListener:
    """`/healthz` (liveness) and `/readyz` (readiness: the database answers) of a
    worker-only process, on a socket of their own."""

    def __init__(self, services: Services, sock: socket.socket) -> None:
        config = uvicorn.Config(
            create_probe_app(services), lifespan="off", log_level="warning", access_log=False
        )
        self._server = _EmbeddedServer(config)
        self._socket = sock
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Listen; returns once requests are answered."""
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        while not self._server.started:
            if self._task.done():
                await self._task  # raises what stopped it
                raise RuntimeError("the probe listener stopped while starting")
            await asyncio.sleep(0.01)  # uvicorn offers no event to wait on
        host, port = self._socket.getsockname()[:2]
        log.info("worker probes on http://%s:%d/healthz and /readyz", host, port)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        await self._task
        self._task = None
