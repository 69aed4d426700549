"""The global event stream: every event of the caller's organizations, live."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from fabric_server.api.deps import PrincipalDep, ServicesDep
from fabric_server.api.envelope import ERROR_RESPONSES
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
    async with services.db.read() as session:
        if organization_id is not None:
            await services.access.authorize(
                session, principal, organization_id, "organization.read"
            )
            org_ids = [organization_id]
        else:
            org_ids = await services.access.visible_org_ids(session, principal)
    wanted = [k.strip() for k in kinds.split(",") if k.strip()] if kinds else None
    where = EventFilter(organization_ids=org_ids, kinds=wanted, include_internal=include_internal)
    return await services.streamer.response(
        request, where, principal_id=principal.id, organization_ids=org_ids, replay=False
    )
