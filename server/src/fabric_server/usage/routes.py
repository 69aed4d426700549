"""HTTP routes for organization usage: totals, records, daily series."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from fabric_server.api.deps import PrincipalDep, ServicesDep
from fabric_server.api.envelope import ERROR_RESPONSES, Envelope, ok
from fabric_server.api.pagination import CursorQuery
from fabric_server.paging import MAX_LIMIT, encode_cursor, page_request
from fabric_server.usage import service
from fabric_server.usage.models import UsageRecord
from fabric_server.usage.repository import RecordFilter
from fabric_server.usage.schemas import OrgUsageOut, OrgUsageRecordOut, UsageDayOut, UsageRecordPage

router = APIRouter(
    prefix="/v1/organizations/{org_id}/usage", tags=["usage"], responses=ERROR_RESPONSES
)

Start = Annotated[
    dt.datetime | None, Query(description="Inclusive; ISO date or time, UTC when no zone")
]
End = Annotated[dt.datetime | None, Query(description="Exclusive; ISO date or time")]
FirstDay = Annotated[dt.date | None, Query(description="First day (default: the 1st)")]
DayAfter = Annotated[dt.date | None, Query(description="Day after the last (default: tomorrow)")]


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@router.get("", response_model=Envelope[OrgUsageOut], summary="Usage totals of a period")
async def get_usage(
    org_id: str,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    start: Start = None,
    end: End = None,
) -> JSONResponse:
    async with services.db.read() as session:
        data = await service.summary(
            services.access, session, principal, org_id, start, end, _today()
        )
    return ok(request, OrgUsageOut.model_validate(data))


@router.get(
    "/records",
    response_model=Envelope[UsageRecordPage],
    summary="Usage records, newest first: {items, next_cursor}",
)
async def list_records(
    org_id: str,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: CursorQuery = None,
    provider_id: Annotated[str | None, Query(max_length=64)] = None,
    model: Annotated[str | None, Query(max_length=200)] = None,
    job_id: Annotated[str | None, Query(max_length=64)] = None,
    start: Start = None,
    end: End = None,
) -> JSONResponse:
    page = page_request(limit, cursor)
    where = RecordFilter(provider_id=provider_id, model=model, job_id=job_id, start=start, end=end)
    async with services.db.read() as session:
        rows, last = await service.records(services.access, session, principal, org_id, where, page)
        items = [record_out(row) for row in rows]
    return ok(
        request, UsageRecordPage(items=items, next_cursor=encode_cursor(last) if last else None)
    )


@router.get(
    "/daily",
    response_model=Envelope[list[UsageDayOut]],
    summary="One row per UTC day in [start, end), days without usage included",
)
async def get_daily(
    org_id: str,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    start: FirstDay = None,
    end: DayAfter = None,
) -> JSONResponse:
    async with services.db.read() as session:
        rows = await service.daily(
            services.access, session, principal, org_id, start, end, _today()
        )
    return ok(request, [UsageDayOut.model_validate(r) for r in rows])


def record_out(row: UsageRecord) -> OrgUsageRecordOut:
    data = {name: getattr(row, name) for name in _RECORD_FIELDS}
    data["estimated_cost_usd"] = row.cost_usd
    return OrgUsageRecordOut.model_validate(data)


_RECORD_FIELDS = tuple(
    name for name in OrgUsageRecordOut.model_fields if name != "estimated_cost_usd"
)
