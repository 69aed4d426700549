"""The caller of a request or the owner of a task, as the domain sees it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from starlette.requests import Request

PrincipalKind = Literal["user", "api_key", "dev"]


@dataclass(frozen=True)
class Principal:
    """The caller. `organization_id` is set when credentials bind it to one organization."""

    id: str
    kind: PrincipalKind
    organization_id: str | None = None
    scopes: tuple[str, ...] = field(default=())
    api_key_id: str | None = None


# Turns a bearer token into its principal, or None when the token is not of its kind.
CredentialVerifier = Callable[["Request", str], Awaitable[Principal | None]]
