"""Whether the caller of an open stream may still read it.

A stream is authorized when it opens, but may stay open for an hour: signing out, leaving
the organization, a disabled key or a lowered role must end it too. Streams ask this check
every `FABRIC_SSE_RECHECK_SECONDS`; it resolves the request's credentials again (a revoked
session or key fails there) and repeats the stream's own authorization, reading the access
caches as of now rather than as of when the stream opened.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.access.principal import Principal
from fabric_server.api.auth import resolve_principal
from fabric_server.db import versions
from fabric_server.errors import DomainError
from fabric_server.services import Services

log = logging.getLogger("fabric_server.events")

Authorize = Callable[[AsyncSession, Principal], Awaitable[object]]
StillAllowed = Callable[[], Awaitable[bool]]


def still_allowed(
    request: Request, services: Services, principal: Principal, authorize: Authorize
) -> StillAllowed:
    """A check answering False once `principal` (as the request's credentials now resolve)
    is no longer who opened the stream, or `authorize` refuses it."""

    async def check() -> bool:
        token = versions.begin_request()
        try:
            current = await resolve_principal(request)
            if current != principal:
                return False
            async with services.db.read() as session:
                await authorize(session, current)
            return True
        except DomainError:
            return False
        except Exception:
            log.exception("re-checking an event stream's access failed; it stays open")
            return True
        finally:
            versions.end_request(token)

    return check
