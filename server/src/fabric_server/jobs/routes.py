"""HTTP routes for jobs: parse, authorize via the service, shape the envelope."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from fabric_server.api.deps import PrincipalDep, ServicesDep
from fabric_server.api.envelope import BUDGET_EXCEEDED_RESPONSE, ERROR_RESPONSES, Envelope, ok
from fabric_server.api.pagination import CursorQuery
from fabric_server.api.stream_access import still_allowed
from fabric_server.api.waiting import MAX_WAIT_SECONDS, client_gone
from fabric_server.audit.actions import audited
from fabric_server.events.repository import EventFilter
from fabric_server.jobs.models import Job
from fabric_server.jobs.schemas import (
    JobBatchCreate,
    JobBatchOut,
    JobCreate,
    JobOut,
    JobPage,
    JobStatus,
    JobUsage,
)
from fabric_server.paging import MAX_LIMIT, encode_cursor, page_request
from fabric_server.usage.models import UsageRecord

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
@audited("job.create")
async def create_job(
    body: JobCreate, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    job, created = await services.jobs.submit(principal, body)
    return ok(request, job_out(job), 201 if created else 200)


@router.post(
    "/batch",
    status_code=201,
    response_model=Envelope[JobBatchOut],
    responses=BUDGET_EXCEEDED_RESPONSE,
    summary="Submit up to 1,000 jobs in one transaction",
)
@audited("job_batch.create")
async def create_job_batch(
    body: JobBatchCreate, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    jobs = [
        job
        if job.organization_id
        else job.model_copy(update={"organization_id": body.organization_id})
        for job in body.jobs
    ]
    results = await services.jobs.submit_many(principal, jobs)
    items = [job_out(job) for job, _ in results]
    created = sum(created for _, created in results)
    return ok(request, JobBatchOut(items=items, created=created), 201)


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
    return ok(request, JobPage(items=items, next_cursor=next_cursor))


@router.get("/{job_id}", response_model=Envelope[JobOut], summary="Get a job")
async def get_job(
    job_id: str,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    wait: Annotated[
        float,
        Query(
            ge=0,
            le=MAX_WAIT_SECONDS,
            description="Hold the request until the job is completed or failed, or this many "
            "seconds passed (then it answers the job as it is)",
        ),
    ] = 0,
) -> JSONResponse:
    gone = partial(client_gone, request)
    job = await services.jobs.view(principal, job_id, wait=wait, gone=gone)
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
        job = await services.jobs.get(session, principal, job_id)
    where = EventFilter(job_id=job_id, include_internal=include_internal)
    return await services.streamer.response(
        request,
        where,
        principal_id=principal.id,
        organization_ids=[job.organization_id],
        still_allowed=still_allowed(
            request,
            services,
            principal,
            lambda session, caller: services.jobs.get(session, caller, job_id),
        ),
        terminal_kinds=JOB_TERMINAL_KINDS,
    )


def job_out(job: Job | Mapping[str, Any]) -> JobOut:
    if isinstance(job, Mapping):
        data = {column: job[column] for column in _JOB_FIELDS}
    else:
        data = {column: getattr(job, column) for column in _JOB_FIELDS}
    data["job_id"] = data["id"]
    return JobOut.model_validate(data)


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
