"""HTTP routes for schedules (wire-spec §9.6)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from fabric_server.api.deps import PrincipalDep, ServicesDep
from fabric_server.api.envelope import ERROR_RESPONSES, Envelope, ok
from fabric_server.audit.actions import audited
from fabric_server.paging import CURSOR_PATTERN, MAX_LIMIT
from fabric_server.schedules.schemas import (
    FiringOut,
    ScheduleCreate,
    ScheduleDeleted,
    ScheduleOut,
    ScheduleUpdate,
    TriggerOut,
)
from fabric_server.schedules.views import firing_out, schedule_out, trigger_out

router = APIRouter(tags=["schedules"], responses=ERROR_RESPONSES)

OF_DEFINITION = "/v1/workflow-definitions/{definition_id}/schedules"
SCHEDULE = "/v1/schedules/{schedule_id}"
NEXT_CURSOR_HEADER = "X-Next-Cursor"


@router.post(
    OF_DEFINITION,
    status_code=201,
    response_model=Envelope[ScheduleOut],
    summary="Create a cron schedule that starts runs of the workflow",
)
@audited("schedule.create")
async def create_schedule(
    definition_id: str,
    body: ScheduleCreate,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
) -> JSONResponse:
    async with services.db.write() as session:
        schedule = await services.schedules.service.create(session, principal, definition_id, body)
        data = schedule_out(schedule)
    return ok(request, data, 201)


@router.get(
    OF_DEFINITION,
    response_model=Envelope[list[ScheduleOut]],
    summary="The workflow's schedules",
)
async def list_schedules(
    definition_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.read() as session:
        rows = await services.schedules.service.of_definition(session, principal, definition_id)
        return ok(request, [schedule_out(row) for row in rows])


@router.get(SCHEDULE, response_model=Envelope[ScheduleOut], summary="Get a schedule")
async def get_schedule(
    schedule_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.read() as session:
        schedule = await services.schedules.service.get(session, principal, schedule_id)
        return ok(request, schedule_out(schedule))


@router.patch(
    SCHEDULE,
    response_model=Envelope[ScheduleOut],
    summary="Change a schedule (only the fields sent); re-timing starts from now",
)
@audited("schedule.update")
async def update_schedule(
    schedule_id: str,
    body: ScheduleUpdate,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
) -> JSONResponse:
    async with services.db.write() as session:
        schedule = await services.schedules.service.update(session, principal, schedule_id, body)
        data = schedule_out(schedule)
    return ok(request, data)


@router.delete(
    SCHEDULE,
    response_model=Envelope[ScheduleDeleted],
    summary="Delete a schedule and its history (its runs stay)",
)
@audited("schedule.delete")
async def delete_schedule(
    schedule_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.write() as session:
        await services.schedules.service.delete(session, principal, schedule_id)
    return ok(request, ScheduleDeleted(id=schedule_id, deleted=True))


@router.post(
    f"{SCHEDULE}/trigger",
    status_code=202,
    response_model=Envelope[TriggerOut],
    summary="Start a run now (recorded in the history as a manual trigger)",
)
@audited("schedule.trigger")
async def trigger_schedule(
    schedule_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.write() as session:
        firing = await services.schedules.service.trigger(session, principal, schedule_id)
        data = trigger_out(firing)
    return ok(request, data, 202)


@router.get(
    f"{SCHEDULE}/history",
    response_model=Envelope[list[FiringOut]],
    responses={
        200: {
            "description": "History entries, newest first",
            "headers": {
                NEXT_CURSOR_HEADER: {
                    "description": "Present when more entries exist: pass it as `cursor`",
                    "schema": {"type": "string"},
                }
            },
        }
    },
    summary="The schedule's firings: runs started and occurrences skipped, newest first",
)
async def get_schedule_history(
    schedule_id: str,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[
        str | None,
        Query(
            max_length=64,
            pattern=CURSOR_PATTERN,
            description="The id of the last entry already seen",
        ),
    ] = None,
) -> JSONResponse:
    async with services.db.read() as session:
        rows, more = await services.schedules.service.history(
            session, principal, schedule_id, limit=limit, cursor=cursor
        )
        response = ok(request, [firing_out(firing, status) for firing, status in rows])
    if more is not None:
        response.headers[NEXT_CURSOR_HEADER] = more
    return response
