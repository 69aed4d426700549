"""HTTP routes for jobs: parse, authorize via the service, shape the envelope."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from fabric_server.api.deps import PrincipalDep, ServicesDep
from fabric_server.api.envelope import ERROR_RESPONSES, Envelope, ok
from fabric_server.api.pagination import MAX_LIMIT, CursorQuery, encode_cursor, page_request
from fabric_server.budgets.schemas import BUDGET_EXCEEDED_RESPONSE
from fabric_server.db.models import Job, UsageRecord
from fabric_server.events.repository import EventFilter
from fabric_server.jobs.schemas import JobCreate, JobOut, JobPage, JobStatus, JobUsage

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=ERROR_RESPONSES)

JOB_TERMINAL_KINDS = ("job.completed", "job.failed")


@router.post(
    "",
    status_code=201,
    response_model=Envelope[JobOut],
    responses={
        200: {"model": Envelope[JobOut], "description": "Idempotent replay"},
        **BUDGET_EXCEEDED_RESPONSE,
    },
    summary="Submit a job",
)
async def create_job(
    body: JobCreate, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.write() as session:
        job, created = await services.jobs.submit(session, principal, body)
        data = job_out(job)
    return ok(request, data, 201 if created else 200)


@router.get("", response_model=Envelope[JobPage], summary="List jobs, newest first")
async def list_jobs(
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: CursorQuery = None,
    organization_id: str | None = None,
    status: JobStatus | None = None,
) -> JSONResponse:
    page = page_request(limit, cursor)
    async with services.db.read() as session:
        rows, last = await services.jobs.list_page(
            session, principal, page, organization_id=organization_id, status=status
        )
        items = [job_out(job) for job in rows]
    next_cursor = encode_cursor(last) if last else None
    return ok(request, {"items": items, "next_cursor": next_cursor})


@router.get("/{job_id}", response_model=Envelope[JobOut], summary="Get a job")
async def get_job(
    job_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.read() as session:
        job = await services.jobs.get(session, principal, job_id)
        return ok(request, job_out(job))


@router.get("/{job_id}/usage", response_model=Envelope[JobUsage], summary="Usage of a job")
async def get_job_usage(
    job_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.read() as session:
        job, records = await services.jobs.usage(session, principal, job_id)
        return ok(request, usage_out(job, records))


@router.get(
    "/{job_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "SSE stream"}},
    summary="Stream a job's events (replay, then live; ends after the terminal event)",
)
async def stream_job_events(
    job_id: str,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    include_internal: bool = False,
) -> StreamingResponse:
    async with services.db.read() as session:
        await services.jobs.get(session, principal, job_id)
    where = EventFilter(job_id=job_id, include_internal=include_internal)
    return await services.streamer.response(request, where, terminal_kinds=JOB_TERMINAL_KINDS)


def job_out(job: Job) -> dict[str, Any]:
    data = {column: getattr(job, column) for column in _JOB_FIELDS}
    data["job_id"] = job.id
    return JobOut.model_validate(data).model_dump(mode="json")


_JOB_FIELDS = tuple(name for name in JobOut.model_fields if name != "job_id")


def usage_out(job: Job, records: list[UsageRecord]) -> dict[str, Any]:
    last = records[-1] if records else None
    usage = JobUsage(
        job_id=job.id,
        provider_id=last.provider_id if last else None,
        model=last.model if last else None,
        input_tokens=sum(r.input_tokens for r in records),
        output_tokens=sum(r.output_tokens for r in records),
        estimated_cost_usd=sum(r.cost_usd for r in records),
        records=[
            {
                **{k: getattr(r, k) for k in _USAGE_FIELDS},
                "estimated_cost_usd": r.cost_usd,
            }
            for r in records
        ],
    )
    return usage.model_dump(mode="json")


_USAGE_FIELDS = (
    "id",
    "organization_id",
    "job_id",
    "run_id",
    "node_key",
    "provider_id",
    "model",
    "modality",
    "input_tokens",
    "output_tokens",
    "latency_ms",
    "created_at",
)
