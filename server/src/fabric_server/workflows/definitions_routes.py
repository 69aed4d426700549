"""HTTP routes for workflow definitions."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from fabric_server.api.deps import PrincipalDep, ServicesDep
from fabric_server.api.envelope import ERROR_RESPONSES, Envelope, ok
from fabric_server.audit.actions import audited
from fabric_server.workflows.schemas import DefinitionOut, DefinitionUpsert
from fabric_server.workflows.views import definition_out

router = APIRouter(prefix="/v1/workflow-definitions", tags=["workflows"], responses=ERROR_RESPONSES)


@router.post(
    "",
    status_code=201,
    response_model=Envelope[DefinitionOut],
    responses={200: {"model": Envelope[DefinitionOut], "description": "Updated: next version"}},
    summary="Create or update a workflow definition (by organization and name)",
)
@audited("definition.upsert")
async def upsert_definition(
    body: DefinitionUpsert, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.write() as session:
        definition, created = await services.workflows.definitions.upsert(session, principal, body)
        data = definition_out(definition)
    return ok(request, data, 201 if created else 200)


@router.get("", response_model=Envelope[list[DefinitionOut]], summary="List workflow definitions")
async def list_definitions(
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    organization_id: str | None = None,
) -> JSONResponse:
    async with services.db.read() as session:
        rows = await services.workflows.definitions.list(session, principal, organization_id)
        return ok(request, [definition_out(row) for row in rows])


@router.get(
    "/{definition_id}", response_model=Envelope[DefinitionOut], summary="Get a workflow definition"
)
async def get_definition(
    definition_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.read() as session:
        definition = await services.workflows.definitions.get(session, principal, definition_id)
        return ok(request, definition_out(definition))
