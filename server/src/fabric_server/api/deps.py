"""Shared FastAPI dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from fabric_server.access.principal import Principal
from fabric_server.api.auth import resolve_principal
from fabric_server.services import Services


async def get_services(request: Request) -> Services:
    # async: FastAPI would run a plain function on a worker thread, a hand-off per request.
    services: Services = request.app.state.services
    return services


async def current_principal(request: Request) -> Principal:
    """The authenticated caller, also kept on the request for the audit log."""
    principal = await resolve_principal(request)
    request.state.principal = principal
    return principal


ServicesDep = Annotated[Services, Depends(get_services)]
PrincipalDep = Annotated[Principal, Depends(current_principal)]
