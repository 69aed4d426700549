"""Executes queued jobs through the provider interface."""

from __future__ import annotations

import time

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.db.database import Database
from fabric_server.db.models import WorkItem
from fabric_server.engine.handler import PermanentError, RetryingHandler
from fabric_server.engine.queue import WorkQueue
from fabric_server.events.outbox import EventRecorder
from fabric_server.jobs import repository
from fabric_server.providers.base import ProviderInputError, ProviderRequest
from fabric_server.providers.registry import ProviderRegistry
from fabric_server.usage.records import usage_record


class JobHandler(RetryingHandler):
    """pending → started → completed | failed, each step with its event."""

    def __init__(
        self, db: Database, queue: WorkQueue, events: EventRecorder, providers: ProviderRegistry
    ) -> None:
        super().__init__(db, queue)
        self.events = events
        self.providers = providers

    async def execute(self, item: WorkItem) -> None:
        job_id = item.ref_id or ""
        async with self.db.write() as session:
            job = await repository.get(session, job_id)
            if job is None or job.status in ("completed", "failed"):
                await self.queue.complete(session, item)
                return
            now = repository.now()
            await repository.transition(
                session,
                job.id,
                ("pending", "started"),
                status="started",
                started_at=job.started_at or now,
                attempts=item.attempts,
                updated_at=now,
            )
            await self.events.record(
                session,
                "job.started",
                organization_id=job.organization_id,
                job_id=job.id,
                payload={"attempt": item.attempts},
            )
            request = ProviderRequest(
                modality=job.modality, input=job.input, model=job.model, params=job.params or {}
            )
            tier, org_id, principal_id = job.tier, job.organization_id, job.created_by

        started = time.perf_counter()
        try:
            provider = self.providers.route(request, tier)
            result = await provider.execute(request)
        except ProviderInputError as exc:
            raise PermanentError(str(exc)) from exc
        latency_ms = int((time.perf_counter() - started) * 1000)

        async with self.db.write() as session:
            now = repository.now()
            moved = await repository.transition(
                session,
                job_id,
                ("started",),
                status="completed",
                output=result.output,
                error=None,
                completed_at=now,
                updated_at=now,
            )
            if moved:
                session.add(
                    usage_record(
                        result,
                        modality=request.modality,
                        organization_id=org_id,
                        principal_id=principal_id,
                        latency_ms=latency_ms,
                        job_id=job_id,
                    )
                )
                await self.events.record(
                    session,
                    "job.completed",
                    organization_id=org_id,
                    job_id=job_id,
                    payload={"output": result.output, "provider_id": result.provider_id},
                )
            await self.queue.complete(session, item)

    async def on_retry(self, session: AsyncSession, item: WorkItem, error: str) -> None:
        await repository.transition(
            session, item.ref_id or "", ("started",), error=error, updated_at=repository.now()
        )

    async def on_failure(self, session: AsyncSession, item: WorkItem, error: str) -> None:
        job = await repository.get(session, item.ref_id or "")
        if job is None:
            return
        now = repository.now()
        moved = await repository.transition(
            session,
            job.id,
            ("pending", "started"),
            status="failed",
            error=error,
            completed_at=now,
            updated_at=now,
        )
        if moved:
            await self.events.record(
                session,
                "job.failed",
                organization_id=job.organization_id,
                job_id=job.id,
                payload={"error": error},
            )
