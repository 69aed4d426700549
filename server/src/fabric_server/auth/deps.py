"""HTTP helpers shared by the auth routes: client details, rate limits, response shapes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request

from fabric_server.auth.core import ClientInfo, IssuedTokens
from fabric_server.auth.models import User
from fabric_server.auth.schemas import AuthResponse, AuthUser
from fabric_server.errors import RateLimited


def client_info(request: Request) -> ClientInfo:
    return ClientInfo(
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )


def rate_limit(bucket: str) -> Callable[[Request], Awaitable[None]]:
    """A dependency: at most `FABRIC_AUTH_RATE_LIMIT` calls per client address per window."""

    async def check(request: Request) -> None:
        address = request.client.host if request.client else "unknown"
        limit_key(request, (bucket, address))

    return check


def limit_key(request: Request, key: tuple[str, str]) -> None:
    """Count one call against `key`; 429 `rate_limited` with `Retry-After` when over."""
    retry_after = request.app.state.services.auth.core.limiter.hit(key)
    if retry_after is not None:
        raise RateLimited("Too many requests: slow down and retry later.", retry_after=retry_after)


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def user_out(user: User) -> AuthUser:
    return AuthUser(
        id=user.id,
        email=user.email,
        display_name=user.display_name,
        email_verified=user.email_verified,
    )


def auth_out(issued: IssuedTokens) -> AuthResponse:
    return AuthResponse(
        access_token=issued.access_token,
        refresh_token=issued.refresh_token,
        expires_in=issued.expires_in,
        user=user_out(issued.user),
    )
