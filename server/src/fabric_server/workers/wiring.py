"""Builds the code workers' domain from the shared services."""

from __future__ import annotations

from dataclasses import dataclass

from fabric_server.assembly import Assembled, Platform
from fabric_server.secrets.service import SecretStore
from fabric_server.workers.expiry import TaskExpiryHandler
from fabric_server.workers.service import WorkerService
from fabric_server.workers.signal import TaskSignal
from fabric_server.workers.tasks import TaskBoard
from fabric_server.workflows.effects import TASK_EXPIRE_KIND, TASK_KIND_PREFIX
from fabric_server.workflows.wiring import Workflows


@dataclass(kw_only=True)
class Workers(Assembled):
    service: WorkerService


def assemble(platform: Platform, secrets: SecretStore, workflows: Workflows) -> Workers:
    """The service, and the work handlers this server runs for code workers' tasks."""
    settings, db, writer = platform.settings, platform.db, platform.writer
    queue, events = platform.queue, platform.events
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
        platform.access,
        events,
        board,
        heartbeat_seconds=settings.worker_heartbeat_seconds,
        lease_seconds=settings.worker_task_lease_seconds,
    )
    return Workers(
        service=service, handlers={TASK_EXPIRE_KIND: TaskExpiryHandler(db, queue, workflows.steps)}
    )
