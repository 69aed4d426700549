"""A fake Fabric auth server: numbered token pairs, single-use refresh tokens, one protected
resource (``GET /v1/jobs/{id}``) that only a valid access token may read.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any, Optional

import httpx

from .helpers import fail, ok, sse_frame, sse_response

USER = {"id": "user-1", "email": "ada@example.com", "display_name": None, "email_verified": True}


class FakeAuthServer:
    def __init__(self, *, expires_in: Optional[int] = 3600, refresh_delay: float = 0.0) -> None:
        self.expires_in = expires_in
        # How long a refresh takes: gives concurrent callers the time to pile up behind it.
        self.refresh_delay = refresh_delay
        self.issued = 0
        self.valid_access: set[str] = set()
        self.valid_refresh: set[str] = set()
        self.requests: list[httpx.Request] = []
        # (path, Authorization) as each request arrived: a replay re-signs the same request.
        self.seen: list[tuple[str, Optional[str]]] = []
        self._lock = threading.Lock()

    # --- what the tests look at -------------------------------------------------------------

    def paths(self) -> list[str]:
        return [request.url.path for request in self.requests]

    def refresh_calls(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path == "/v1/auth/token/refresh"]

    def resource_bearers(self) -> list[Optional[str]]:
        resources = ("/v1/jobs", "/v1/workflow-runs")
        return [bearer for path, bearer in self.seen if path.startswith(resources)]

    def expire_access_tokens(self) -> None:
        """The server-side expiry: every access token issued so far stops working."""
        self.valid_access.clear()

    def revoke_refresh_tokens(self) -> None:
        self.valid_refresh.clear()

    # --- the server -------------------------------------------------------------------------

    def issue(self, status: int = 200) -> httpx.Response:
        self.issued += 1
        access, refresh = f"access-{self.issued}", f"refresh-{self.issued}"
        self.valid_access.add(access)
        self.valid_refresh.add(refresh)
        data: dict[str, Any] = {
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "bearer",
            "user": USER,
        }
        if self.expires_in is not None:
            data["expires_in"] = self.expires_in
        return ok(data, status=status)

    def _authorized(self, request: httpx.Request) -> bool:
        header = request.headers.get("Authorization", "")
        return header.startswith("Bearer ") and header[len("Bearer ") :] in self.valid_access

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
            self.seen.append((request.url.path, request.headers.get("Authorization")))
        path = request.url.path
        body = json.loads(request.content) if request.content else None
        if path == "/v1/auth/token/refresh":
            if self.refresh_delay:
                time.sleep(self.refresh_delay)
            return self._refresh(body)
        with self._lock:
            return self._answer(request, path, body)

    async def handle_async(self, request: httpx.Request) -> httpx.Response:
        """The async face: a refresh yields to the event loop while it "runs"."""
        if request.url.path == "/v1/auth/token/refresh":
            with self._lock:
                self.requests.append(request)
            self.seen.append((request.url.path, request.headers.get("Authorization")))
            await asyncio.sleep(self.refresh_delay)
            return self._refresh(json.loads(request.content))
        return self(request)

    def _refresh(self, body: Any) -> httpx.Response:
        with self._lock:
            token = body.get("refresh_token")
            if token not in self.valid_refresh:
                return fail(401, "unauthorized", "refresh token revoked")
            self.valid_refresh.discard(token)  # single use
            return self.issue()

    def _answer(self, request: httpx.Request, path: str, body: Any) -> httpx.Response:
        if path in ("/v1/auth/login", "/v1/auth/signup", "/v1/auth/magic-link/verify"):
            if body.get("password") == "wrong":
                return fail(401, "unauthorized", "invalid email or password")
            return self.issue(201 if path.endswith("signup") else 200)
        if path.startswith("/v1/auth/"):
            return httpx.Response(204)
        if not self._authorized(request):
            return fail(401, "unauthorized", "access token expired")
        if path.endswith("/events"):
            return sse_response([sse_frame("workflow.run.completed", "e-1", payload={})])
        return ok({"id": path.rsplit("/", 1)[-1]})
