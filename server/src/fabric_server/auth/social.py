"""Social sign-in, the OAuth2 authorization-code flow with PKCE (S256) and a state check.

The flow's secrets (state, PKCE verifier, provider) travel in a signed, 10-minute,
HttpOnly cookie set when the flow starts. The callback accepts only the state in that
cookie, which also ties the flow to the browser that started it (no login CSRF); the
verifier never leaves the browser-server pair, so a stolen code is useless elsewhere.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode

import httpx

from fabric_server.auth.passwords import normalize_email
from fabric_server.auth.tokens import TokenSigner
from fabric_server.errors import (
    NotFound,
    Unauthorized,
    Unavailable,
    Unprocessable,
    ValidationFailed,
)
from fabric_server.settings import Settings

STATE_COOKIE = "fabric_oauth_state"
STATE_PURPOSE = "oauth-state"
STATE_TTL_SECONDS = 600
CALLBACK_PATH = "/v1/auth/callback"


@dataclass(frozen=True)
class Provider:
    name: str
    client_id: str
    client_secret: str | None
    authorize_url: str
    token_url: str
    userinfo_url: str
    scopes: str
    profile: Literal["oidc", "github"] = "oidc"
    emails_url: str | None = None


@dataclass(frozen=True)
class SocialProfile:
    provider: str
    provider_user_id: str
    email: str | None
    email_verified: bool
    display_name: str | None = None
    avatar_url: str | None = None


def configured_providers(settings: Settings) -> dict[str, Provider]:
    """Google and GitHub (their published endpoints) when their client ids are set, plus
    every provider in `FABRIC_OIDC_PROVIDERS`."""
    found: dict[str, Provider] = {}
    if settings.google_client_id:
        found["google"] = Provider(
            name="google",
            client_id=settings.google_client_id,
            client_secret=settings.google_client_secret,
            authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
            token_url="https://oauth2.googleapis.com/token",  # noqa: S106
            userinfo_url="https://openidconnect.googleapis.com/v1/userinfo",
            scopes="openid email profile",
        )
    if settings.github_client_id:
        found["github"] = Provider(
            name="github",
            client_id=settings.github_client_id,
            client_secret=settings.github_client_secret,
            authorize_url="https://github.com/login/oauth/authorize",
            token_url="https://github.com/login/oauth/access_token",  # noqa: S106
            userinfo_url="https://api.github.com/user",
            scopes="read:user user:email",
            profile="github",
            emails_url="https://api.github.com/user/emails",
        )
    for name, conf in settings.oidc_providers.items():
        key = name.lower()
        found[key] = Provider(name=key, **conf.model_dump())
    return found


def pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class SignInRefused(Unprocessable):
    """A callback that matches no sign-in under way (422; the code clients already know)."""

    code = "bad_request"


class OAuthFlow:
    """Starts flows (authorize URL + state cookie) and finishes them (code → profile)."""

    def __init__(self, settings: Settings, *, timeout: float = 10.0) -> None:
        self.providers = configured_providers(settings)
        self.redirect_uri = settings.resolved_public_url + CALLBACK_PATH
        self.timeout = timeout

    def provider(self, name: str) -> Provider:
        found = self.providers.get(name.lower())
        if found is None:
            known = ", ".join(sorted(self.providers)) or "none"
            raise NotFound(
                f"Social sign-in with {name!r} is not configured on this server "
                f"(configured: {known})."
            )
        return found

    def begin(self, name: str, signer: TokenSigner, now: dt.datetime) -> tuple[str, str]:
        """The provider's authorization URL and the signed cookie that remembers the flow."""
        provider = self.provider(name)
        state = secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)
        cookie = signer.sign(
            STATE_PURPOSE,
            {"p": provider.name, "s": state, "v": verifier},
            now=now,
            ttl=STATE_TTL_SECONDS,
        )
        query = urlencode(
            {
                "response_type": "code",
                "client_id": provider.client_id,
                "redirect_uri": self.redirect_uri,
                "scope": provider.scopes,
                "state": state,
                "code_challenge": pkce_challenge(verifier),
                "code_challenge_method": "S256",
            }
        )
        separator = "&" if "?" in provider.authorize_url else "?"
        return f"{provider.authorize_url}{separator}{query}", cookie

    async def finish(
        self,
        *,
        code: str | None,
        state: str | None,
        error: str | None,
        cookie: str | None,
        signer: TokenSigner,
        now: dt.datetime,
    ) -> SocialProfile:
        """Check the state against the cookie, trade the code, and read the user profile."""
        flow = signer.unsign(STATE_PURPOSE, cookie, now=now) if cookie else None
        if flow is None:
            raise SignInRefused(
                "This sign-in attempt is unknown or has expired: please start again."
            )
        if not state or not hmac.compare_digest(str(flow.get("s", "")), state):
            raise SignInRefused("The sign-in state does not match: please start again.")
        provider = self.provider(str(flow.get("p", "")))
        if error:
            raise Unauthorized(f"{provider.name} did not complete the sign-in ({error[:100]}).")
        if not code:
            raise SignInRefused("The provider sent no authorization code.")
        try:
            async with httpx.AsyncClient(timeout=self.timeout, headers=_HEADERS) as http:
                access_token = await self._exchange(http, provider, code, str(flow.get("v")))
                return await self._profile(http, provider, access_token)
        except httpx.HTTPError as exc:
            raise Unavailable(
                f"{provider.name} could not be reached ({type(exc).__name__})."
            ) from exc

    async def _exchange(
        self, http: httpx.AsyncClient, provider: Provider, code: str, verifier: str
    ) -> str:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "client_id": provider.client_id,
            "code_verifier": verifier,
        }
        if provider.client_secret:
            form["client_secret"] = provider.client_secret
        response = await http.post(provider.token_url, data=form)
        body = _json_object(response)
        token = body.get("access_token")
        if response.status_code != 200 or not isinstance(token, str) or not token:
            raise Unauthorized(f"{provider.name} did not accept the sign-in code.")
        return token

    async def _profile(
        self, http: httpx.AsyncClient, provider: Provider, access_token: str
    ) -> SocialProfile:
        auth = {"Authorization": f"Bearer {access_token}"}
        response = await http.get(provider.userinfo_url, headers=auth)
        info = _json_object(response)
        if response.status_code != 200:
            raise Unauthorized(f"{provider.name} did not return the user's profile.")
        if provider.profile == "github":
            emails: list[Any] = []
            if provider.emails_url:
                listed = await http.get(provider.emails_url, headers=auth)
                if listed.status_code == 200:
                    emails = _json_list(listed)
            return _github_profile(provider.name, info, emails)
        return _oidc_profile(provider.name, info)


_HEADERS = {"Accept": "application/json", "User-Agent": "fabric-server"}


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _json_list(response: httpx.Response) -> list[Any]:
    try:
        body = response.json()
    except ValueError:
        return []
    return body if isinstance(body, list) else []


def _clean_email(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return normalize_email(value)
    except ValidationFailed:
        return None


def _text(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _oidc_profile(provider: str, info: dict[str, Any]) -> SocialProfile:
    subject = info.get("sub")
    if not isinstance(subject, (str, int)) or subject == "":
        raise Unauthorized(f"{provider} returned a profile without a subject.")
    verified = info.get("email_verified")
    return SocialProfile(
        provider=provider,
        provider_user_id=str(subject),
        email=_clean_email(info.get("email")),
        email_verified=verified is True or verified == "true",
        display_name=_text(info.get("name") or info.get("preferred_username"), 200),
        avatar_url=_text(info.get("picture"), 2000),
    )


def _github_profile(provider: str, info: dict[str, Any], emails: list[Any]) -> SocialProfile:
    user_id = info.get("id")
    if not isinstance(user_id, (str, int)) or user_id == "":
        raise Unauthorized(f"{provider} returned a profile without an id.")
    email, verified = None, False
    for entry in emails:
        if isinstance(entry, dict) and entry.get("primary") and entry.get("verified"):
            email, verified = _clean_email(entry.get("email")), True
            break
    if email is None:
        email = _clean_email(info.get("email"))
    return SocialProfile(
        provider=provider,
        provider_user_id=str(user_id),
        email=email,
        email_verified=verified and email is not None,
        display_name=_text(info.get("name") or info.get("login"), 200),
        avatar_url=_text(info.get("avatar_url"), 2000),
    )
