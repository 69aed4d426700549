"""A small OAuth2 / OpenID Connect provider on loopback, for social sign-in tests.

It speaks the authorization-code flow with PKCE for real: `/authorize` checks the request
and redirects back with a code bound to the S256 challenge; `/token` refuses a code whose
verifier does not match, a wrong client secret or a reused code; `/userinfo` answers OIDC
claims; `/user` and `/user/emails` answer like GitHub's API. The "signed-in user" at the
provider is whatever the test puts in `profile` (or `github_user` / `github_emails`).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from fabric_server.settings import OAuthProviderSettings
from fabric_server.testing import free_port


class FakeProvider:
    def __init__(self, client_id: str = "fabric-client", client_secret: str = "shh") -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.profile: dict[str, Any] = {
            "sub": "user-1",
            "email": "sam@example.com",
            "email_verified": True,
            "name": "Sam",
            "picture": "https://img.example.com/sam.png",
        }
        self.github_user: dict[str, Any] = {"id": 4242, "login": "octo", "name": None}
        self.github_emails: list[dict[str, Any]] = []
        self.token_errors: list[str] = []
        self._codes: dict[str, dict[str, Any]] = {}
        self._tokens: dict[str, dict[str, Any]] = {}
        app = Starlette(
            routes=[
                Route("/authorize", self.authorize),
                Route("/token", self.token, methods=["POST"]),
                Route("/userinfo", self.userinfo),
                Route("/user", self.user),
                Route("/user/emails", self.emails),
            ]
        )
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def settings(self, **overrides: Any) -> OAuthProviderSettings:
        values: dict[str, Any] = {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "authorize_url": f"{self.base_url}/authorize",
            "token_url": f"{self.base_url}/token",
            "userinfo_url": f"{self.base_url}/userinfo",
            **overrides,
        }
        return OAuthProviderSettings(**values)

    def __enter__(self) -> FakeProvider:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake provider did not start")
            time.sleep(0.01)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    # --- endpoints -------------------------------------------------------------------------

    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        problems = [
            name
            for name, ok in (
                ("response_type", q.get("response_type") == "code"),
                ("client_id", q.get("client_id") == self.client_id),
                ("redirect_uri", bool(q.get("redirect_uri"))),
                ("state", bool(q.get("state"))),
                ("code_challenge", bool(q.get("code_challenge"))),
                ("code_challenge_method", q.get("code_challenge_method") == "S256"),
            )
            if not ok
        ]
        if problems:
            return JSONResponse({"error": "invalid_request", "fields": problems}, 400)
        code = secrets.token_urlsafe(16)
        self._codes[code] = {
            "challenge": q["code_challenge"],
            "redirect_uri": q["redirect_uri"],
            "scope": q.get("scope", ""),
        }
        query = urlencode({"code": code, "state": q["state"]})
        return RedirectResponse(f"{q['redirect_uri']}?{query}", status_code=302)

    async def token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        grant = self._codes.pop(form.get("code", ""), None)  # codes are single-use
        error = None
        if grant is None:
            error = "unknown or reused code"
        elif form.get("client_id") != self.client_id:
            error = "wrong client"
        elif form.get("client_secret") != self.client_secret:
            error = "wrong client secret"
        elif form.get("redirect_uri") != grant["redirect_uri"]:
            error = "redirect_uri mismatch"
        elif _challenge(form.get("code_verifier", "")) != grant["challenge"]:
            error = "PKCE verification failed"
        if error is not None:
            self.token_errors.append(error)
            return JSONResponse({"error": "invalid_grant", "error_description": error}, 400)
        access = secrets.token_urlsafe(16)
        self._tokens[access] = {"profile": dict(self.profile), "github": dict(self.github_user)}
        return JSONResponse({"access_token": access, "token_type": "Bearer", "expires_in": 60})

    def _grant(self, request: Request) -> dict[str, Any] | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return self._tokens.get(token) if scheme.lower() == "bearer" else None

    async def userinfo(self, request: Request) -> Response:
        grant = self._grant(request)
        if grant is None:
            return JSONResponse({"error": "invalid_token"}, 401)
        return JSONResponse(grant["profile"])

    async def user(self, request: Request) -> Response:
        grant = self._grant(request)
        if grant is None:
            return JSONResponse({"message": "Bad credentials"}, 401)
        return JSONResponse(grant["github"])

    async def emails(self, request: Request) -> Response:
        if self._grant(request) is None:
            return JSONResponse({"message": "Bad credentials"}, 401)
        return JSONResponse(self.github_emails)


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
