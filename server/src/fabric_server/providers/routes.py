"""HTTP routes for providers: the catalogue, direct execution and cost estimates."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from fabric_server.access.principal import Principal
from fabric_server.access.scope import caller_organization
from fabric_server.api.deps import PrincipalDep, ServicesDep
from fabric_server.api.envelope import (
    BUDGET_EXCEEDED_RESPONSE,
    ERROR_RESPONSES,
    Envelope,
    ErrorEnvelope,
    ok,
    request_id_of,
)
from fabric_server.audit.actions import audited
from fabric_server.errors import Unprocessable
from fabric_server.events.sse import SSE_HEADERS
from fabric_server.provider_calls.authorization import (
    EXECUTE_ACTION,
    READ_ACTION,
    authorized_organization,
)
from fabric_server.provider_calls.streaming import (
    StreamCall,
    execution_data,
    first_event,
    frames,
)
from fabric_server.providers.base import (
    Credentials,
    ProviderInputError,
    ProviderRequest,
    validate_input,
)
from fabric_server.providers.schemas import (
    EstimateBody,
    EstimateOut,
    ExecuteBody,
    ExecutionOut,
    ProviderOut,
)
from fabric_server.services import Services

UPSTREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    **BUDGET_EXCEEDED_RESPONSE,
    424: {"model": ErrorEnvelope, "description": "The provider refused the stored credentials"},
    502: {"model": ErrorEnvelope, "description": "The provider failed"},
    504: {"model": ErrorEnvelope, "description": "The provider did not answer in time"},
}

router = APIRouter(prefix="/v1/providers", tags=["providers"], responses=ERROR_RESPONSES)


@router.get(
    "",
    response_model=Envelope[list[ProviderOut]],
    summary="Providers, their models, prices, health and availability for an organization",
)
async def list_providers(
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    organization_id: Annotated[str | None, Query(max_length=64)] = None,
    check: Annotated[
        bool, Query(description="Run each available provider's health check (cached)")
    ] = False,
) -> JSONResponse:
    registry = services.providers
    async with services.db.read() as session:
        org_id = await caller_organization(services.access, session, principal, organization_id)
        if org_id is not None:
            await services.access.authorize(session, principal, org_id, READ_ACTION)
        credentials = await registry.credentials(session, org_id)
    if check:
        await registry.check_health(credentials)
    return ok(request, [ProviderOut.model_validate(p) for p in registry.catalogue(credentials)])


@router.post(
    "/execute",
    response_model=Envelope[ExecutionOut],
    responses=UPSTREAM_RESPONSES,
    summary="Run one request on the provider routing picks (or the pinned model's)",
)
@audited("provider.execute")
async def execute(
    body: ExecuteBody, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    provider_request = _provider_request(body)
    org_id, credentials = await _admit(services, principal, body, provider_request)
    try:
        execution = await services.calls.run(provider_request, body.tier, credentials)
    except ProviderInputError as exc:
        raise _invalid(exc) from exc
    await services.calls.record(execution, org_id, principal)
    return ok(request, ExecutionOut.model_validate(execution_data(execution)))


@router.post(
    "/execute/stream",
    response_class=StreamingResponse,
    responses={
        **UPSTREAM_RESPONSES,
        200: {
            "content": {"text/event-stream": {}},
            "description": "SSE: `started`, `delta`…, then `completed` (or `error`)",
        },
    },
    summary="Run one request and stream the answer as it is produced",
)
@audited("provider.execute_stream")
async def execute_stream(
    body: ExecuteBody, request: Request, services: ServicesDep, principal: PrincipalDep
) -> StreamingResponse:
    provider_request = _provider_request(body)
    org_id, credentials = await _admit(services, principal, body, provider_request)
    events = services.calls.stream(provider_request, body.tier, credentials)
    try:
        first = await first_event(events)
    except ProviderInputError as exc:
        raise _invalid(exc) from exc
    call = StreamCall(
        calls=services.calls,
        request=provider_request,
        organization_id=org_id,
        principal=principal,
        request_id=request_id_of(request),
        keepalive_seconds=services.settings.sse_keepalive_seconds,
    )
    return StreamingResponse(
        frames(call, first, events), media_type="text/event-stream", headers=SSE_HEADERS
    )


@router.post(
    "/estimate",
    response_model=Envelope[EstimateOut],
    summary="What a request would cost, and on which provider",
)
@audited("provider.estimate")
async def estimate(
    body: EstimateBody, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    provider_request = _provider_request(body)
    async with services.db.read() as session:
        org_id = await authorized_organization(
            services.access, session, principal, body.organization_id, READ_ACTION
        )
        credentials = await services.providers.credentials(session, org_id)
    try:
        data = services.providers.estimate(provider_request, body.tier, credentials)
    except ProviderInputError as exc:
        raise _invalid(exc) from exc
    return ok(request, EstimateOut.model_validate(data))


def _provider_request(body: ExecuteBody) -> ProviderRequest:
    provider_request = ProviderRequest(
        modality=body.modality, input=body.input, model=body.model, params=body.params or {}
    )
    try:
        validate_input(provider_request)
    except ProviderInputError as exc:
        raise _invalid(exc) from exc
    return provider_request


async def _admit(
    services: Services, principal: Principal, body: ExecuteBody, request: ProviderRequest
) -> tuple[str, Credentials]:
    """The organization a call runs in and its credentials, once the caller may run it there
    and its budget allows it (402 `budget_exceeded` before anyone is called)."""
    async with services.db.read() as session:
        org_id = await authorized_organization(
            services.access, session, principal, body.organization_id, EXECUTE_ACTION
        )
        try:
            credentials = await services.calls.admit_in(session, org_id, request, body.tier)
        except ProviderInputError as exc:
            raise _invalid(exc) from exc
    return org_id, credentials


def _invalid(exc: ProviderInputError) -> Unprocessable:
    # The documented input shape was met, but the provider routing picked cannot serve it.
    return Unprocessable(str(exc), details={"errors": [{"path": "input", "message": str(exc)}]})
