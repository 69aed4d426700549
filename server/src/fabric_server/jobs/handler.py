"""Executes queued jobs through provider routing (the same path as direct execution).

Provider failures that time can fix — upstream rate limits, 5xx, timeouts, paused
endpoints — are retried with backoff; input mistakes, refused credentials and missing
configuration fail the job at once. So does a paid job whose organization spent its monthly
budget while the job waited in the queue: it fails with `budget_exceeded` without running.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.budgets.service import BudgetExceeded, BudgetService
from fabric_server.db.database import Database
from fabric_server.db.models import WorkItem
from fabric_server.engine.handler import PermanentError, RetryingHandler
from fabric_server.engine.queue import WorkQueue
from fabric_server.events.outbox import EventRecorder
from fabric_server.jobs import repository
from fabric_server.jobs.status import FINISHED_JOB_STATUSES, JobStatus
from fabric_server.jobs.transitions import move_job
from fabric_server.providers.base import ProviderInputError, ProviderRequest
from fabric_server.providers.errors import ProviderError
from fabric_server.providers.registry import ProviderRegistry
from fabric_server.usage.recorder import usage_record


class JobHandler(RetryingHandler):
    """pending → started → completed | failed, each step with its event (and back to
    pending when a stopping worker hands the job back)."""

    def __init__(
        self,
        db: Database,
        queue: WorkQueue,
        events: EventRecorder,
        providers: ProviderRegistry,
        budgets: BudgetService,
    ) -> None:
        super().__init__(db, queue)
        self.events = events
        self.providers = providers
        self.budgets = budgets

    async def execute(self, item: WorkItem) -> None:
        job_id = item.ref_id or ""
        async with self.db.write() as session:
            job = await repository.get(session, job_id)
            if job is None or job.status in FINISHED_JOB_STATUSES:
                await self.queue.complete(session, item)
                return
            request = ProviderRequest(
                modality=job.modality, input=job.input, model=job.model, params=job.params or {}
            )
            tier, org_id, principal_id = job.tier, job.organization_id, job.created_by
            api_key_id = job.api_key_id
            credentials = await self.providers.credentials(session, org_id)
            try:
                await self.budgets.check(session, org_id, request, tier, credentials)
            except BudgetExceeded as exc:  # the job fails without starting (nothing to keep)
                raise PermanentError(f"{exc.code}: {exc.message}") from exc
            except ProviderInputError as exc:
                raise PermanentError(str(exc)) from exc
            now = repository.now()
            await move_job(
                session,
                self.events,
                job.id,
                job.organization_id,
                JobStatus.STARTED,
                {"attempt": item.attempts},
                started_at=job.started_at or now,
                attempts=item.attempts,
                updated_at=now,
            )

        try:
            execution = await self.providers.execute(request, tier, credentials)
        except ProviderInputError as exc:
            raise PermanentError(str(exc)) from exc
        except ProviderError as exc:
            if exc.transient:
                raise
            raise PermanentError(f"{exc.code}: {exc.message}") from exc
        result = execution.result

        record = usage_record(
            execution,
            organization_id=org_id,
            principal_id=principal_id,
            api_key_id=api_key_id,
            job_id=job_id,
        )
        async with self.db.write() as session:
            # Usage only when the job moved (a re-executed job records it once), and before
            # the event: the budget row lock precedes the event-order lock.
            record_usage = functools.partial(self.budgets.record_usage, session, [record])
            now = repository.now()
            await move_job(
                session,
                self.events,
                job_id,
                org_id,
                JobStatus.COMPLETED,
                {"output": result.output, "provider_id": result.provider_id},
                before_event=record_usage,
                output=result.output,
                error=None,
                completed_at=now,
                updated_at=now,
            )
            await self.queue.complete(session, item)

    async def on_release(self, session: AsyncSession, item: WorkItem) -> None:
        """The server stopped mid-attempt: the job waits again (`pending`), and the attempt,
        which the queue does not count, is not counted here either."""
        attempts = item.attempts - 1
        values: dict[str, Any] = {"attempts": attempts}
        if attempts == 0:
            values["started_at"] = None
        job = await repository.get(session, item.ref_id or "")
        if job is None:
            return
        await move_job(
            session,
            self.events,
            job.id,
            job.organization_id,
            JobStatus.PENDING,
            {"attempt": item.attempts, "reason": "shutdown"},
            updated_at=repository.now(),
            **values,
        )

    async def on_retry(self, session: AsyncSession, item: WorkItem, error: str) -> None:
        await repository.update_where(
            session,
            item.ref_id or "",
            (JobStatus.STARTED,),
            error=error,
            updated_at=repository.now(),
        )

    async def on_failure(self, session: AsyncSession, item: WorkItem, error: str) -> None:
        job = await repository.get(session, item.ref_id or "")
        if job is None:
            return
        now = repository.now()
        await move_job(
            session,
            self.events,
            job.id,
            job.organization_id,
            JobStatus.FAILED,
            {"error": error},
            error=error,
            completed_at=now,
            updated_at=now,
        )
