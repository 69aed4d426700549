"""HTTP routes for workflow runs.

Get, pause, resume and cancel are served on both path families the reference clients use:
`/v1/workflow-runs/{id}` and `/v1/workflows/runs/{id}` (wire-spec §17 #2).
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from fabric_server.api.deps import PrincipalDep, ServicesDep
from fabric_server.api.envelope import ERROR_RESPONSES, Envelope, ok
from fabric_server.api.pagination import CursorQuery
from fabric_server.api.stream_access import still_allowed
from fabric_server.api.waiting import MAX_WAIT_SECONDS, client_gone
from fabric_server.audit.actions import audited
from fabric_server.events.repository import EventFilter
from fabric_server.events.waiting import wait_for_event
from fabric_server.paging import MAX_LIMIT, encode_cursor, page_request
from fabric_server.workflows.schemas import (
    BulkCancel,
    BulkCancelResult,
    RunCancel,
    RunCreate,
    RunLog,
    RunOut,
    RunPage,
    RunPause,
    RunStart,
    RunStatus,
)
from fabric_server.workflows.views import run_log_out, run_out

router = APIRouter(tags=["workflows"], responses=ERROR_RESPONSES)

RUNS = "/v1/workflow-runs"
RUNS_ALIAS = "/v1/workflows/runs"
RUN_TERMINAL_KINDS = ("workflow.run.completed", "workflow.run.failed", "workflow.run.cancelled")


@router.post(
    RUNS,
    status_code=201,
    response_model=Envelope[RunOut],
    responses={200: {"model": Envelope[RunOut], "description": "Idempotent replay"}},
    summary="Create a workflow run (pending until started)",
)
@audited("run.create")
async def create_run(
    body: RunCreate, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.write() as session:
        run, created = await services.workflows.runs.create(session, principal, body)
        data = run_out(run, await services.workflows.runs.node_states(session, run.id))
    return ok(request, data, 201 if created else 200)


@router.get(RUNS, response_model=Envelope[RunPage], summary="List workflow runs, newest first")
async def list_runs(
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: CursorQuery = None,
    organization_id: str | None = None,
    status: RunStatus | None = None,
    workflow_definition_id: str | None = None,
) -> JSONResponse:
    page = page_request(limit, cursor)
    async with services.db.read() as session:
        rows, last = await services.workflows.runs.list_page(
            session,
            principal,
            page,
            organization_id=organization_id,
            status=status,
            definition_id=workflow_definition_id,
        )
        nodes = await services.workflows.runs.node_states_of(session, [run.id for run in rows])
        items = [run_out(run, nodes.get(run.id, [])) for run in rows]
    return ok(request, RunPage(items=items, next_cursor=encode_cursor(last) if last else None))


@router.post(
    f"{RUNS}/bulk-cancel",
    response_model=Envelope[BulkCancelResult],
    summary="Cancel several runs; those that cannot be cancelled are listed with a reason",
)
@audited("runs.bulk_cancel")
async def bulk_cancel_runs(
    body: BulkCancel, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.write() as session:
        cancelled, skipped = await services.workflows.runs.bulk_cancel(
            session, principal, body.run_ids
        )
    return ok(
        request, BulkCancelResult.model_validate({"cancelled": cancelled, "skipped": skipped})
    )


@router.get(f"{RUNS}/{{run_id}}", response_model=Envelope[RunOut], summary="Get a run")
@router.get(f"{RUNS_ALIAS}/{{run_id}}", response_model=Envelope[RunOut], summary="Get a run")
async def get_run(
    run_id: str,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    wait: Annotated[
        float,
        Query(
            ge=0,
            le=MAX_WAIT_SECONDS,
            description="Hold the request until the run is completed, failed or cancelled, or "
            "this many seconds passed (then it answers the run as it is)",
        ),
    ] = 0,
) -> JSONResponse:
    if wait > 0:

        async def ended() -> bool:
            async with services.db.read() as session:
                run = await services.workflows.runs.get(session, principal, run_id)
                return run.status.is_terminal

        where = EventFilter(run_id=run_id, kinds=RUN_TERMINAL_KINDS, include_internal=True)
        gone = partial(client_gone, request)
        await wait_for_event(services.hub, where, ended, wait, gone)
    async with services.db.read() as session:
        run = await services.workflows.runs.get(session, principal, run_id)
        return ok(request, run_out(run, await services.workflows.runs.node_states(session, run.id)))


@router.post(
    f"{RUNS}/{{run_id}}/start",
    status_code=202,
    response_model=Envelope[RunOut],
    summary="Start a run: queue it for the workers (idempotent)",
)
@audited("run.start")
async def start_run(
    run_id: str,
    body: RunStart,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
) -> JSONResponse:
    async with services.db.write() as session:
        run = await services.workflows.runs.start(session, principal, run_id, body.priority)
        data = run_out(run, await services.workflows.runs.node_states(session, run.id))
    return ok(request, data, 202)


@router.post(f"{RUNS}/{{run_id}}/cancel", response_model=Envelope[RunOut], summary="Cancel a run")
@router.post(
    f"{RUNS_ALIAS}/{{run_id}}/cancel", response_model=Envelope[RunOut], summary="Cancel a run"
)
@audited("run.cancel")
async def cancel_run(
    run_id: str,
    body: RunCancel,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
) -> JSONResponse:
    async with services.db.write() as session:
        run = await services.workflows.runs.cancel(session, principal, run_id, body.reason)
        data = run_out(run, await services.workflows.runs.node_states(session, run.id))
    return ok(request, data)


@router.post(
    f"{RUNS}/{{run_id}}/pause",
    response_model=Envelope[RunOut],
    summary="Pause a run: no further node is dispatched until it is resumed",
)
@router.post(
    f"{RUNS_ALIAS}/{{run_id}}/pause",
    response_model=Envelope[RunOut],
    summary="Pause a run: no further node is dispatched until it is resumed",
)
@audited("run.pause")
async def pause_run(
    run_id: str,
    body: RunPause,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
) -> JSONResponse:
    async with services.db.write() as session:
        run = await services.workflows.runs.pause(session, principal, run_id, body.reason)
        data = run_out(run, await services.workflows.runs.node_states(session, run.id))
    return ok(request, data)


@router.post(
    f"{RUNS}/{{run_id}}/resume",
    response_model=Envelope[RunOut],
    summary="Resume a paused run: dispatch every node that is ready",
)
@router.post(
    f"{RUNS_ALIAS}/{{run_id}}/resume",
    response_model=Envelope[RunOut],
    summary="Resume a paused run: dispatch every node that is ready",
)
@audited("run.resume")
async def resume_run(
    run_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.write() as session:
        run = await services.workflows.runs.resume_run(session, principal, run_id)
        data = run_out(run, await services.workflows.runs.node_states(session, run.id))
    return ok(request, data)


@router.get(
    f"{RUNS}/{{run_id}}/log",
    response_model=Envelope[RunLog],
    summary="A run's node states and its events",
)
async def get_run_log(
    run_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.read() as session:
        run, nodes, events = await services.workflows.runs.log(session, principal, run_id)
        return ok(request, run_log_out(run, nodes, events))


@router.get(
    f"{RUNS}/{{run_id}}/children",
    response_model=Envelope[list[RunOut]],
    summary="Child runs (sub-workflows and fan-out branches), in order",
)
async def list_children(
    run_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.read() as session:
        children = await services.workflows.runs.children(session, principal, run_id)
        nodes = await services.workflows.runs.node_states_of(
            session, [child.id for child in children]
        )
        return ok(request, [run_out(child, nodes.get(child.id, [])) for child in children])


@router.post(
    f"{RUNS}/{{run_id}}/nodes/{{node_key}}/resume",
    response_model=Envelope[RunOut],
    summary="Resume a waiting node; the request body becomes the node's output",
)
@audited("node.resume")
async def resume_node(
    run_id: str,
    node_key: str,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    data: Annotated[dict[str, Any], Body(description="The node's output, e.g. {'approved': true}")],
) -> JSONResponse:
    async with services.db.write() as session:
        run = await services.workflows.runs.resume(session, principal, run_id, node_key, data)
        body = run_out(run, await services.workflows.runs.node_states(session, run.id))
    return ok(request, body)


@router.get(
    f"{RUNS}/{{run_id}}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "SSE stream"}},
    summary="Stream a run's events (replay, then live; ends after the run's terminal event)",
)
async def stream_run_events(
    run_id: str,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    include_internal: bool = False,
) -> StreamingResponse:
    async with services.db.read() as session:
        run = await services.workflows.runs.get(session, principal, run_id)
    where = EventFilter(run_id=run_id, include_internal=include_internal)
    return await services.streamer.response(
        request,
        where,
        principal_id=principal.id,
        organization_ids=[run.organization_id],
        still_allowed=still_allowed(
            request,
            services,
            principal,
            lambda session, caller: services.workflows.runs.get(session, caller, run_id),
        ),
        terminal_kinds=RUN_TERMINAL_KINDS,
    )
