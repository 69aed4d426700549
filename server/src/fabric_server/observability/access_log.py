"""The access log: one record per HTTP request, written when its response ends, with the
route template (never the query string), status and duration; and the request context for
every record written while the request is handled."""

from __future__ import annotations

import logging
import time

from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fabric_server.observability.logs import close_request, open_request
from fabric_server.observability.middleware import route_template

log = logging.getLogger("fabric_server.access")
# Asked every few seconds by probes and the metrics scraper: logged at DEBUG when they
# succeed, so they do not drown the requests of users.
ROUTINE_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        token = open_request(scope)

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                span = trace.get_current_span()  # the request's span ends with the response
                if span.is_recording():
                    request_id = (scope.get("state") or {}).get("request_id")
                    span.set_attribute("fabric.request_id", str(request_id))
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            duration_ms = round((time.perf_counter() - started) * 1000, 2)
            route = route_template(scope)
            method = str(scope.get("method", ""))
            routine = route in ROUTINE_ROUTES and status < 400
            log.log(
                logging.DEBUG if routine else logging.INFO,
                "%s %s %d %.1f ms",
                method,
                route,
                status,
                duration_ms,
                extra={"fields": {"status": status, "duration_ms": duration_ms}},
            )
            close_request(token)
