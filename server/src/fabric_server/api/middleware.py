"""Pure ASGI middleware: request ids, empty JSON bodies, and the last-resort error net."""

from __future__ import annotations

import logging
import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fabric_server.api.envelope import error_response
from fabric_server.db import versions
from fabric_server.request_context import RequestAudit, current_request

log = logging.getLogger("fabric_server.api")
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")
_BODY_METHODS = {"POST", "PUT", "PATCH"}


class RequestContextMiddleware:
    """Assigns `request_id`, answers crashes with the error envelope, fixes empty bodies.

    * `X-Request-Id` from the caller is kept when it is short and plain; otherwise a new id.
    * A POST/PUT/PATCH without a body is treated as the JSON object `{}` (clients send
      body-less action calls with a JSON content type).
    * Any exception that escapes the app becomes a 500 `internal_error` envelope; the
      traceback goes to the server log only.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else f"req_{uuid.uuid4().hex}"
        scope.setdefault("state", {})["request_id"] = request_id

        if scope["method"] in _BODY_METHODS and _declares_empty_body(headers):
            _declare_json_object_body(scope)
            receive = _empty_object_receive(receive)

        started = False
        audit_token = current_request.set(RequestAudit(scope, request_id))
        versions_token = versions.begin_request()

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            log.exception(
                "unhandled error on %s %s (%s)", scope["method"], scope["path"], request_id
            )
            if started:
                raise
            response = error_response(
                request_id, 500, "internal_error", "The server hit an unexpected error."
            )
            await response(scope, receive, send_wrapper)
        finally:
            versions.end_request(versions_token)
            current_request.reset(audit_token)


def _declares_empty_body(headers: dict[bytes, bytes]) -> bool:
    if b"transfer-encoding" in headers:
        return False
    return headers.get(b"content-length", b"0").strip() in (b"0", b"")


def _declare_json_object_body(scope: Scope) -> None:
    """In place, not on a copy: the middleware outside this one reads the matched route
    from this same scope once the app has answered (metrics and the access log)."""
    kept = [
        (k, v) for k, v in scope.get("headers", []) if k not in (b"content-length", b"content-type")
    ]
    kept += [(b"content-length", b"2"), (b"content-type", b"application/json")]
    scope["headers"] = kept


def _empty_object_receive(receive: Receive) -> Receive:
    sent = False

    async def patched() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            # Drain the (empty) original body so disconnect detection keeps working.
            await receive()
            return {"type": "http.request", "body": b"{}", "more_body": False}
        return await receive()

    return patched
