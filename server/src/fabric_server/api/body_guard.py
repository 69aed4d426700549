"""Pure ASGI middleware: refuse input no route should ever see, before any route sees it.

One place checks every request, so no route can forget to:

* the path, the query string and the headers must not hold a NUL character (PostgreSQL
  cannot store one, and would fail the query);
* a JSON body must not nest deeper than `FABRIC_JSON_MAX_DEPTH` containers, nor hold a NUL
  character in any key or string.

The answer is `400 validation_failed` with `details.errors[]` naming where (`in`: `path`,
`query`, `header` or `body`; `path`: the dotted location or the parameter's name). A JSON
body is scanned cheaply first (its bytes are searched for `\\u0000` and its brackets
counted) and parsed here only when that scan cannot rule a problem out; whatever passes is
handed on unchanged.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fabric_server.api.envelope import error_response
from fabric_server.json_limits import Problem, find_problem

_ESCAPED_NUL = b"\\u0000"


class JsonBodyGuard:
    def __init__(self, app: ASGIApp, *, max_depth: int) -> None:
        self.app = app
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = _head_problem(scope)
        if problem is None and _is_json(scope):
            body, receive = await _buffered(receive)
            body_problem = self._body_problem(body)
            problem = None if body_problem is None else ("body", body_problem)
        if problem is None:
            await self.app(scope, receive, send)
            return
        where, found = problem
        location = f"{where} {found.path}" if found.path else where
        request_id = str((scope.get("state") or {}).get("request_id", "req_unknown"))
        response = error_response(
            request_id,
            400,
            "validation_failed",
            f"Invalid request: {location} {found.message}.",
            {"errors": [{"path": found.path, "in": where, "message": found.message}]},
        )
        await response(scope, receive, send)

    def _body_problem(self, body: bytes) -> Problem | None:
        may_nest = body.count(b"[") + body.count(b"{") > self.max_depth
        if not may_nest and _ESCAPED_NUL not in body:
            return None
        try:
            value = json.loads(body)
        except (ValueError, RecursionError):
            return None  # not JSON (or absurdly deep): the route's parser answers invalid_json
        return find_problem(value, self.max_depth)


def _head_problem(scope: Scope) -> tuple[str, Problem] | None:
    if "\x00" in scope.get("path", ""):
        return "path", Problem("", "must not contain the NUL character (%00)")
    for key, value in scope.get("headers") or []:
        if b"\x00" in value:
            name = bytes(key).decode("latin-1")
            return "header", Problem(name, "must not contain the NUL character")
    query = scope.get("query_string", b"")
    if b"%00" not in query and b"\x00" not in query:
        return None
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            shown = name.replace("\x00", "")
            return "query", Problem(shown, "must not contain the NUL character (%00)")
    return None


def _is_json(scope: Scope) -> bool:
    if scope.get("method") not in ("POST", "PUT", "PATCH", "DELETE"):
        return False
    for key, value in scope.get("headers") or []:
        if key == b"content-type":
            media = bytes(value).split(b";", 1)[0].strip().lower()
            return not media or media == b"application/json" or media.endswith(b"+json")
    return True  # without a content type, routes read the body as JSON too


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """The whole request body, and a `receive` that hands it on (then the original's)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            # The client went away: pass that on as it came.
            return b"".join(chunks), _replay([message], receive)
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    return body, _replay([{"type": "http.request", "body": body, "more_body": False}], receive)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
