"""Pure ASGI middleware for dev mode: keep web pages from acting as the dev owner.

In dev mode a request without credentials acts as the dev owner, so any web page the
developer opens could call the API from their browser. This guard refuses, with
`403 forbidden` in the error envelope:

* on a loopback address, a `Host` that is not `localhost` or a loopback address (plus
  `FABRIC_DEV_ALLOWED_HOSTS`): a page of another site that rebinds its DNS name to
  127.0.0.1 still sends its own name;
* a state-changing request (POST, PUT, PATCH, DELETE) that a browser marks as coming from
  another site (`Sec-Fetch-Site: cross-site`) or whose `Origin` is not a loopback address
  (or an allowed host), and one whose body is of a type an HTML form or a plain
  cross-site request can send without asking (`text/plain`, form encodings): the API
  reads JSON only.

Clients other than browsers (the SDK, curl) send none of these and are not affected.
"""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from fabric_server.api.envelope import error_response
from fabric_server.settings import is_loopback

_STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# What a browser sends cross-site without a preflight (the CORS "simple" content types).
_SIMPLE_TYPES = frozenset(
    {b"text/plain", b"application/x-www-form-urlencoded", b"multipart/form-data"}
)


class DevModeGuard:
    def __init__(self, app: ASGIApp, *, check_host: bool, allowed_hosts: Collection[str]) -> None:
        self.app = app
        self.check_host = check_host
        self.allowed_hosts = frozenset(host.lower() for host in allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        reason, message = refusal
        request_id = str((scope.get("state") or {}).get("request_id", "req_unknown"))
        response = error_response(request_id, 403, "forbidden", message, {"reason": reason})
        await response(scope, receive, send)

    def _refusal(self, scope: Scope) -> tuple[str, str] | None:
        headers = {bytes(k): bytes(v) for k, v in scope.get("headers") or []}
        host = headers.get(b"host")
        if self.check_host and host is not None and not self._local(_host_name(host)):
            return (
                "host",
                "Dev mode answers only requests addressed to localhost, 127.0.0.1 or [::1] "
                "(this one names another host, as a page using DNS rebinding would).",
            )
        if scope.get("method") not in _STATE_CHANGING:
            return None
        if headers.get(b"sec-fetch-site", b"").strip().lower() == b"cross-site":
            return ("cross_site", "Dev mode refuses changes requested by another site.")
        origin = headers.get(b"origin")
        if origin is not None and not self._local(_origin_host(origin)):
            return ("cross_site", "Dev mode refuses changes requested by another site.")
        media = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
        if media in _SIMPLE_TYPES:
            return (
                "content_type",
                "Dev mode refuses request bodies a web form could send; send JSON "
                "(Content-Type: application/json).",
            )
        return None

    def _local(self, host: str) -> bool:
        return bool(host) and (is_loopback(host) or host in self.allowed_hosts)


def _host_name(value: bytes) -> str:
    """The name in a `Host` header, without its port: `[::1]:3001` → `[::1]`."""
    text = value.decode("latin-1").strip().lower()
    if text.startswith("["):
        return text.split("]", 1)[0] + "]"
    return text.rsplit(":", 1)[0] if text.count(":") == 1 else text


def _origin_host(value: bytes) -> str:
    text = value.decode("latin-1").strip().lower()
    if text == "null":
        return ""
    try:
        host = urlsplit(text).hostname or ""
    except ValueError:
        return ""
    return f"[{host}]" if ":" in host else host
