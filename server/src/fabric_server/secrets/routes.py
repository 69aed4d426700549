"""HTTP routes for organization secrets. Values are write-only: no route returns them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from fabric_server.api.deps import PrincipalDep, ServicesDep
from fabric_server.api.envelope import ERROR_RESPONSES, Envelope, ok
from fabric_server.audit.actions import audited
from fabric_server.secrets.models import OrgSecret
from fabric_server.secrets.schemas import SecretOut, SecretSet
from fabric_server.secrets.service import NAME_PATTERN

router = APIRouter(
    prefix="/v1/organizations/{org_id}/secrets", tags=["secrets"], responses=ERROR_RESPONSES
)
SecretName = Annotated[str, Path(pattern=NAME_PATTERN, max_length=128)]


@router.post(
    "",
    response_model=Envelope[SecretOut],
    responses={201: {"model": Envelope[SecretOut], "description": "Created"}},
    summary="Set a secret (201 when new, 200 when it replaced one); needs secret.manage",
)
@audited("secret.set")
async def set_secret(
    org_id: str, body: SecretSet, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.write() as session:
        row, created = await services.secrets.set(
            session, principal, org_id, body.name, body.value.get_secret_value()
        )
        data = secret_out(row)
    return ok(request, data, 201 if created else 200)


@router.get(
    "",
    response_model=Envelope[list[SecretOut]],
    summary="Names of the organization's secrets (never their values)",
)
async def list_secrets(
    org_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.read() as session:
        rows = await services.secrets.list(session, principal, org_id)
        return ok(request, [secret_out(row) for row in rows])


@router.delete("/{name}", response_model=Envelope[None], summary="Delete a secret")
@audited("secret.delete")
async def delete_secret(
    org_id: str, name: SecretName, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.write() as session:
        await services.secrets.delete(session, principal, org_id, name)
    return ok(request, None)


def secret_out(row: OrgSecret) -> SecretOut:
    return SecretOut(name=row.name, created_at=row.created_at, updated_at=row.updated_at)
