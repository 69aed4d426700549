"""HTTP routes for API keys (`/v1/api-keys`). Secrets appear only in create and rotate."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from fabric_server.access.models import ApiKey
from fabric_server.access.schemas import ApiKeyCreate, ApiKeyOut, ApiKeyWithSecret
from fabric_server.api.deps import PrincipalDep, ServicesDep
from fabric_server.api.envelope import ERROR_RESPONSES, Envelope, ok
from fabric_server.audit.actions import audited
from fabric_server.errors import Unprocessable

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"], responses=ERROR_RESPONSES)


@router.post(
    "",
    status_code=201,
    response_model=Envelope[ApiKeyWithSecret],
    summary="Create an API key; the response carries the key, shown this once",
)
@audited("key.create")
async def create_key(
    body: ApiKeyCreate, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.write() as session:
        org_id = await services.access.context_org(session, principal, body.organization_id)
        if org_id is None:
            raise Unprocessable("organization_id is required: you belong to several organizations.")
        key, secret = await services.api_keys.create(
            session,
            principal,
            org_id,
            body.name,
            body.scopes,
            description=body.description,
            expires_in_days=body.expires_in_days,
            expires_at=body.expires_at,
        )
        data = key_with_secret(key, secret)
    return ok(request, data, 201)


@router.get(
    "",
    response_model=Envelope[list[ApiKeyOut]],
    summary="API keys of the organizations where you manage keys (no secrets)",
)
async def list_keys(
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    organization_id: Annotated[str | None, Query(max_length=64)] = None,
) -> JSONResponse:
    async with services.db.read() as session:
        keys = await services.api_keys.list(session, principal, organization_id)
        return ok(request, [key_out(k) for k in keys])


@router.get("/{key_id}", response_model=Envelope[ApiKeyOut], summary="Get an API key")
async def get_key(
    key_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.read() as session:
        key = await services.api_keys.get(session, principal, key_id)
        return ok(request, key_out(key))


@router.post(
    "/{key_id}/rotate",
    response_model=Envelope[ApiKeyWithSecret],
    summary="Replace the key's secret (shown this once); the old one stops working at once",
)
@audited("key.rotate")
async def rotate_key(
    key_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.write() as session:
        key, secret = await services.api_keys.rotate(session, principal, key_id)
        data = key_with_secret(key, secret)
    return ok(request, data)


@router.post("/{key_id}/disable", response_model=Envelope[ApiKeyOut], summary="Disable a key")
@audited("key.disable")
async def disable_key(
    key_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.write() as session:
        key = await services.api_keys.disable(session, principal, key_id)
        data = key_out(key)
    return ok(request, data)


@router.delete("/{key_id}", response_model=Envelope[None], summary="Delete a key")
@audited("key.delete")
async def delete_key(
    key_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.write() as session:
        await services.api_keys.delete(session, principal, key_id)
    return ok(request, None)


def key_out(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut.model_validate(_key_fields(key))


def key_with_secret(key: ApiKey, secret: str) -> ApiKeyWithSecret:
    return ApiKeyWithSecret.model_validate({**_key_fields(key), "key": secret})


def _key_fields(key: ApiKey) -> dict[str, Any]:
    return {name: getattr(key, name) for name in ApiKeyOut.model_fields}
