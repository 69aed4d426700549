"""Who is calling: resolves the principal of every request.

Resolution order (wire-spec §4.1): `Authorization: Bearer …` credentials first, then — in dev
mode only — `X-Principal-Id`, then the anonymous dev owner. In production every non-public
route needs credentials. Credential verifiers (API keys, access tokens) plug in through
`CredentialVerifier`; until one accepts a token, a presented bearer token is refused.
"""

from __future__ import annotations

import uuid

from fastapi import Request

from fabric_server.access.principal import Principal
from fabric_server.errors import Unauthorized
from fabric_server.settings import DEV_OWNER_ID


async def resolve_principal(request: Request) -> Principal:
    """FastAPI dependency: the authenticated principal, or 401 `unauthorized`."""
    services = request.app.state.services
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("Authorization must be `Bearer <token>`.")
        for verify in services.credential_verifiers:
            principal: Principal | None = await verify(request, token)
            if principal is not None:
                return principal
        raise Unauthorized("The credentials are not valid.")
    if not services.settings.is_dev:
        raise Unauthorized("Credentials are required: send `Authorization: Bearer <token>`.")
    asserted = request.headers.get("x-principal-id")
    if asserted:
        try:
            return Principal(id=str(uuid.UUID(asserted)), kind="dev")
        except ValueError as exc:
            raise Unauthorized("X-Principal-Id must be a UUID.") from exc
    return Principal(id=DEV_OWNER_ID, kind="dev")
