"""Executes queued jobs through provider routing (the same path as direct execution).

Provider failures that time can fix — upstream rate limits, 5xx, timeouts, paused
endpoints — are retried with backoff; input mistakes, refused credentials and missing
configuration fail the job at once. So does a paid job whose organization spent its monthly
budget while the job waited in the queue: it fails with `budget_exceeded` without running.

A provider that answers within `FAST_WINDOW` (the echo provider, a local model) has the
job's start and completion recorded in one commit: `job.started` and `job.completed` are
written together with the usage row and the work item's completion. A slower one has its
start committed first, so watchers see it running.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.budgets.service import BudgetExceeded, BudgetService
from fabric_server.db.database import Database
from fabric_server.db.models import UsageRecord, WorkItem
from fabric_server.db.types import utcnow
from fabric_server.db.writer import Tx, Writer
from fabric_server.engine.handler import PermanentError, RetryingHandler
from fabric_server.engine.queue import WorkQueue
from fabric_server.events.outbox import EventRecorder
from fabric_server.jobs import repository
from fabric_server.jobs.service import TERMINAL_STATUSES, JobRow, JobService
from fabric_server.providers.base import ProviderInputError, ProviderRequest
from fabric_server.providers.errors import ProviderError
from fabric_server.providers.registry import Execution, ProviderRegistry
from fabric_server.usage.recorder import insert_usage, usage_record

# A provider answering within this many seconds is recorded in a single commit.
FAST_WINDOW = 0.05


class JobHandler(RetryingHandler):
    """pending → started → completed | failed, each step with its event."""

    def __init__(
        self,
        db: Database,
        writer: Writer,
        queue: WorkQueue,
        events: EventRecorder,
        providers: ProviderRegistry,
        budgets: BudgetService,
        jobs: JobService,
    ) -> None:
        super().__init__(db, queue)
        self.writer = writer
        self.events = events
        self.providers = providers
        self.budgets = budgets
        self.jobs = jobs

    async def execute(self, item: WorkItem) -> None:
        job_id = item.ref_id or ""
        job = self.jobs.take_recent(job_id) or await self.db.run_read(repository.read_row(job_id))
        if job is None or job["status"] in TERMINAL_STATUSES:
            await self.writer.write(lambda tx: self.queue.finish_in(tx, item))
            return
        request = ProviderRequest(
            modality=job["modality"],
            input=job["input"],
            model=job["model"],
            params=job["params"] or {},
        )
        org_id = job["organization_id"]
        async with self.db.read() as session:
            credentials = await self.providers.credentials(session, org_id)
            try:
                await self.budgets.check(session, org_id, request, job["tier"], credentials)
            except BudgetExceeded as exc:  # the job fails without starting (nothing to keep)
                raise PermanentError(f"{exc.code}: {exc.message}") from exc
            except ProviderInputError as exc:
                raise PermanentError(str(exc)) from exc
        started_at = utcnow()
        call = asyncio.ensure_future(self.providers.execute(request, job["tier"], credentials))
        done, _ = await asyncio.wait({call}, timeout=FAST_WINDOW)
        start_recorded = not done
        if start_recorded:
            try:
                await self.writer.write(lambda tx: self._started(tx, job, item, started_at))
            except BaseException:
                call.cancel()
                raise
        try:
            execution = await call
        except Exception as exc:
            if not start_recorded:  # it ran and failed: watchers see it started, then the rest
                await self.writer.write(lambda tx: self._started(tx, job, item, started_at))
            if isinstance(exc, ProviderInputError):
                raise PermanentError(str(exc)) from exc
            if isinstance(exc, ProviderError) and not exc.transient:
                raise PermanentError(f"{exc.code}: {exc.message}") from exc
            raise
        record = usage_record(
            execution,
            organization_id=org_id,
            principal_id=job["created_by"],
            api_key_id=job["api_key_id"],
            job_id=job_id,
        )
        if record.cost_usd > 0:
            # Paid: the budget's running spend and alerts go with it (its lock first).
            await self._complete_paid(job, item, execution, record, start_recorded, started_at)
            return
        await self.writer.write(
            lambda tx: self._completed(tx, job, item, execution, record, start_recorded, started_at)
        )

    def _started(self, tx: Tx, job: JobRow, item: WorkItem, started_at: Any) -> None:
        params = {
            "b_id": job["id"],
            "b_started": job["started_at"] or started_at,
            "b_attempts": item.attempts,
            "b_now": utcnow(),
        }
        moved = tx.conn.execute(repository.MARK_STARTED, params)
        if moved.rowcount == 1:
            self.events.record_in(
                tx,
                "job.started",
                organization_id=job["organization_id"],
                job_id=job["id"],
                payload={"attempt": item.attempts},
            )

    def _completed(
        self,
        tx: Tx,
        job: JobRow,
        item: WorkItem,
        execution: Execution,
        record: UsageRecord,
        start_recorded: bool,
        started_at: Any,
    ) -> None:
        self.queue.finish_in(tx, item)  # first: nothing else is written without the lease
        now = utcnow()
        result = execution.result
        params = {
            "b_id": job["id"],
            "b_output": result.output,
            "b_attempts": item.attempts,
            "b_started": job["started_at"] or started_at,
            "b_now": now,
        }
        moved = tx.conn.execute(repository.MARK_COMPLETED, params)
        if moved.rowcount != 1:
            return
        org_id = job["organization_id"]
        if not start_recorded:
            self.events.record_in(
                tx,
                "job.started",
                organization_id=org_id,
                job_id=job["id"],
                payload={"attempt": item.attempts},
            )
        insert_usage(tx.conn, record)
        self.events.record_in(
            tx,
            "job.completed",
            organization_id=org_id,
            job_id=job["id"],
            payload={"output": result.output, "provider_id": result.provider_id},
        )

    async def _complete_paid(
        self,
        job: JobRow,
        item: WorkItem,
        execution: Execution,
        record: UsageRecord,
        start_recorded: bool,
        started_at: Any,
    ) -> None:
        result = execution.result
        org_id, job_id = job["organization_id"], job["id"]
        async with self.db.write() as session:
            now = repository.now()
            moved = await repository.transition(
                session,
                job_id,
                ("pending", "started"),
                status="completed",
                output=result.output,
                error=None,
                attempts=item.attempts,
                started_at=job["started_at"] or started_at,
                completed_at=now,
                updated_at=now,
            )
            if moved:
                await self.budgets.record_usage(session, [record])  # before the first event
                if not start_recorded:
                    await self.events.record(
                        session,
                        "job.started",
                        organization_id=org_id,
                        job_id=job_id,
                        payload={"attempt": item.attempts},
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
