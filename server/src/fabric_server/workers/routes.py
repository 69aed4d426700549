"""HTTP routes for code workers: registration and the operator's list, then the protocol a
worker speaks about its tasks (long poll, heartbeat, reports, progress and logs)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from fabric_server.api.deps import PrincipalDep, ServicesDep
from fabric_server.api.envelope import ERROR_RESPONSES, Envelope, ok
from fabric_server.api.pagination import CursorQuery
from fabric_server.audit.actions import audited
from fabric_server.paging import MAX_LIMIT, encode_cursor, page_request
from fabric_server.workers.models import CodeWorker
from fabric_server.workers.schemas import (
    Accepted,
    CompleteIn,
    FailIn,
    HeartbeatIn,
    HeartbeatOut,
    LogIn,
    PollIn,
    ProgressIn,
    TaskOut,
    TaskReported,
    WorkerOut,
    WorkerPage,
    WorkerRegister,
)
from fabric_server.workers.service import WorkerService
from fabric_server.workers.tasks import HeldTask, Report

router = APIRouter(prefix="/v1/workers", tags=["workers"], responses=ERROR_RESPONSES)


@router.post(
    "",
    status_code=201,
    response_model=Envelope[WorkerOut],
    summary="Register a code worker and the operations it serves (key scope worker.execute)",
)
@audited("worker.register")
async def register_worker(
    body: WorkerRegister, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    workers = services.workers
    async with services.db.write() as session:
        worker = await workers.register(
            session,
            principal,
            body.organization_id,
            name=body.name,
            operations=[(op.name, op.concurrency) for op in body.operations],
            sdk_version=body.sdk_version,
            host=body.host,
        )
        data = worker_out(workers, worker, 0)
    return ok(request, data, 201)


@router.get("", response_model=Envelope[WorkerPage], summary="List code workers, newest first")
async def list_workers(
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: CursorQuery = None,
    organization_id: Annotated[str | None, Query(max_length=64)] = None,
    status: Literal["online", "stale", "offline"] | None = None,
) -> JSONResponse:
    workers = services.workers
    async with services.db.read() as session:
        rows, last = await workers.list_page(
            session,
            principal,
            page_request(limit, cursor),
            organization_id=organization_id,
            status=status,
        )
    counts = await workers.in_flight(rows)
    items = [worker_out(workers, w, counts.get(w.id, 0)) for w in rows]
    return ok(request, WorkerPage(items=items, next_cursor=encode_cursor(last) if last else None))


@router.get("/{worker_id}", response_model=Envelope[WorkerOut], summary="Get a code worker")
async def get_worker(
    worker_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    workers = services.workers
    async with services.db.read() as session:
        worker = await workers.get(session, principal, worker_id)
    counts = await workers.in_flight([worker])
    return ok(request, worker_out(workers, worker, counts.get(worker.id, 0)))


@router.delete(
    "/{worker_id}",
    response_model=Envelope[WorkerOut],
    summary="Deregister a worker that stopped: the tasks it still holds go back to the queue",
)
@audited("worker.deregister")
async def deregister_worker(
    worker_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    workers = services.workers
    worker = await workers.deregister(principal, worker_id)
    return ok(request, worker_out(workers, worker, 0))


@router.post(
    "/{worker_id}/tasks/poll",
    response_model=Envelope[list[TaskOut]],
    summary="Take tasks, waiting up to wait_seconds for the first (long poll)",
)
@audited("worker.poll", row=False)
async def poll_tasks(
    worker_id: str,
    body: PollIn,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
) -> JSONResponse:
    tasks = await services.workers.poll(
        principal, worker_id, dict(body.capacity), body.wait_seconds, request.is_disconnected
    )
    return ok(request, [TaskOut.model_validate(task) for task in tasks])


@router.post(
    "/{worker_id}/heartbeat",
    response_model=Envelope[HeartbeatOut],
    summary="Keep the worker online and its tasks leased; answers the tasks to stop",
)
@audited("worker.heartbeat", row=False)
async def heartbeat(
    worker_id: str,
    body: HeartbeatIn,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
) -> JSONResponse:
    held = [HeldTask(task.id, task.attempt) for task in body.tasks]
    cancel, expires = await services.workers.heartbeat(principal, worker_id, held)
    return ok(request, HeartbeatOut(cancel=cancel, lease_expires_at=expires.isoformat()))


@router.post(
    "/{worker_id}/tasks/{task_id}/complete",
    response_model=Envelope[TaskReported],
    summary="Report a task's output: the node completes",
)
@audited("worker_task.complete", row=False)
async def complete_task(
    worker_id: str,
    task_id: str,
    body: CompleteIn,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
) -> JSONResponse:
    report = Report(output=body.output)
    await services.workers.report(principal, worker_id, task_id, body.attempt, report)
    return ok(request, TaskReported(task_id=task_id, status="completed"))


@router.post(
    "/{worker_id}/tasks/{task_id}/fail",
    response_model=Envelope[TaskReported],
    summary="Report a task's failure: the node's retry policy decides what follows",
)
@audited("worker_task.fail", row=False)
async def fail_task(
    worker_id: str,
    task_id: str,
    body: FailIn,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
) -> JSONResponse:
    report = Report(error=body.error, retryable=body.retryable, details=body.details)
    await services.workers.report(principal, worker_id, task_id, body.attempt, report)
    return ok(request, TaskReported(task_id=task_id, status="failed"))


@router.post(
    "/{worker_id}/tasks/{task_id}/progress",
    status_code=202,
    response_model=Envelope[Accepted],
    summary="Record a task's progress (a workflow.node.progress event of its run)",
)
@audited("worker_task.progress", row=False)
async def task_progress(
    worker_id: str,
    task_id: str,
    body: ProgressIn,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
) -> JSONResponse:
    payload = {"progress": body.progress, "message": body.message}
    await services.workers.note(
        principal, worker_id, task_id, body.attempt, "workflow.node.progress", payload
    )
    return ok(request, Accepted(task_id=task_id, accepted=True), 202)


@router.post(
    "/{worker_id}/tasks/{task_id}/log",
    status_code=202,
    response_model=Envelope[Accepted],
    summary="Record a log line of a task (a workflow.node.log event of its run)",
)
@audited("worker_task.log", row=False)
async def task_log(
    worker_id: str,
    task_id: str,
    body: LogIn,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
) -> JSONResponse:
    payload = {"level": body.level, "message": body.message}
    await services.workers.note(
        principal, worker_id, task_id, body.attempt, "workflow.node.log", payload
    )
    return ok(request, Accepted(task_id=task_id, accepted=True), 202)


def worker_out(workers: WorkerService, worker: CodeWorker, in_flight: int) -> WorkerOut:
    data = {
        "id": worker.id,
        "organization_id": worker.organization_id,
        "name": worker.name,
        "operations": worker.operations,
        "sdk_version": worker.sdk_version,
        "host": worker.host,
        "status": workers.status_of(worker),
        "tasks_in_flight": in_flight,
        "registered_at": worker.registered_at.isoformat(),
        "last_seen_at": worker.last_seen_at.isoformat(),
        "stopped_at": worker.stopped_at.isoformat() if worker.stopped_at else None,
        "heartbeat_interval_seconds": workers.heartbeat_seconds,
        "lease_seconds": workers.lease_seconds,
    }
    return WorkerOut.model_validate(data)
