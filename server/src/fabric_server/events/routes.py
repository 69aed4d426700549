"""The global event stream: every event of the caller's organizations, live."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.access.principal import Principal
from fabric_server.api.deps import PrincipalDep, ServicesDep
from fabric_server.api.envelope import ERROR_RESPONSES
from fabric_server.api.stream_access import still_allowed
from fabric_server.errors import Forbidden
from fabric_server.events.repository import EventFilter

router = APIRouter(prefix="/v1/events", tags=["events"], responses=ERROR_RESPONSES)


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "SSE stream"}},
    summary="Stream events of your organizations (live; `Last-Event-ID` resumes)",
)
async def stream_events(
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    kinds: Annotated[
        str | None, Query(max_length=2000, description="Comma-separated event kinds")
    ] = None,
    organization_id: str | None = None,
    include_internal: bool = False,
) -> StreamingResponse:
    async def authorize(session: AsyncSession, caller: Principal) -> list[str]:
        if organization_id is not None:
            await services.access.authorize(session, caller, organization_id, "organization.read")
            return [organization_id]
        return await services.access.visible_org_ids(session, caller)

    async def keeps_access(session: AsyncSession, caller: Principal) -> None:
        # Still every organization the stream started with (a membership ended: refused).
        if not set(org_ids) <= set(await authorize(session, caller)):
            raise Forbidden("The caller no longer sees every organization of this stream.")

    async with services.db.read() as session:
        org_ids = await authorize(session, principal)
    wanted = [k.strip() for k in kinds.split(",") if k.strip()] if kinds else None
    where = EventFilter(organization_ids=org_ids, kinds=wanted, include_internal=include_internal)
    return await services.streamer.response(
        request,
        where,
        principal_id=principal.id,
        organization_ids=org_ids,
        still_allowed=still_allowed(request, services, principal, keeps_access),
        replay=False,
    )
