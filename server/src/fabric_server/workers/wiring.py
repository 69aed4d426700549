"""Builds the code workers' domain from the shared services."""

from __future__ import annotations

from fabric_server.access.service import Access
from fabric_server.db.database import Database
from fabric_server.db.writer import Writer
from fabric_server.engine.queue import WorkQueue
from fabric_server.engine.worker import Handler
from fabric_server.events.outbox import EventRecorder
from fabric_server.secrets.service import SecretStore
from fabric_server.settings import Settings
from fabric_server.workers.expiry import TaskExpiryHandler
from fabric_server.workers.service import WorkerService
from fabric_server.workers.signal import TaskSignal
from fabric_server.workers.tasks import TaskBoard
from fabric_server.workflows.effects import TASK_EXPIRE_KIND, TASK_KIND_PREFIX
from fabric_server.workflows.wiring import Workflows


def build_workers(
    settings: Settings,
    db: Database,
    writer: Writer,
    queue: WorkQueue,
    events: EventRecorder,
    access: Access,
    secrets: SecretStore,
    workflows: Workflows,
) -> tuple[WorkerService, dict[str, Handler]]:
    """The service, and the work handlers this server runs for code workers' tasks."""
    signal = TaskSignal()
    # New tasks here, or work queued elsewhere (PostgreSQL LISTEN).
    queue.on_enqueue_of(TASK_KIND_PREFIX, signal.notify)
    board = TaskBoard(
        db,
        writer,
        queue,
        workflows.steps.core,
        events,
        secrets,
        signal,
        limits=workflows.limits,
        lease_seconds=settings.worker_task_lease_seconds,
        heartbeat_seconds=settings.worker_heartbeat_seconds,
        output_max_bytes=settings.worker_task_output_max_bytes,
    )
    service = WorkerService(
        db,
        writer,
        access,
        events,
        board,
        heartbeat_seconds=settings.worker_heartbeat_seconds,
        lease_seconds=settings.worker_task_lease_seconds,
    )
    handlers: dict[str, Handler] = {
        TASK_EXPIRE_KIND: TaskExpiryHandler(db, queue, workflows.steps),
    }
    return service, handlers
