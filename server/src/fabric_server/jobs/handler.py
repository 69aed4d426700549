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
import functools
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.budgets.service import BudgetExceeded
from fabric_server.db.database import Database
from fabric_server.db.types import utcnow
from fabric_server.db.writer import Tx, Writer
from fabric_server.engine.handler import PermanentError, RetryingHandler
from fabric_server.engine.models import WorkItem
from fabric_server.engine.queue import WorkQueue
from fabric_server.events.outbox import EventRecorder
from fabric_server.jobs import repository
from fabric_server.jobs.service import JobRow, JobService
from fabric_server.jobs.status import FINISHED_JOB_STATUSES, JobStatus
from fabric_server.jobs.transitions import move_job
from fabric_server.provider_calls.use_case import ProviderCalls
from fabric_server.providers.base import ProviderInputError, ProviderRequest
from fabric_server.providers.errors import ProviderError
from fabric_server.providers.registry import Execution
from fabric_server.usage.models import UsageRecord

# A provider answering within this many seconds is recorded in a single commit.
FAST_WINDOW = 0.05


class JobHandler(RetryingHandler):
    """pending → started → completed | failed, each step with its event (and back to
    pending when a stopping worker hands the job back)."""

    def __init__(
        self,
        db: Database,
        writer: Writer,
        queue: WorkQueue,
        events: EventRecorder,
        calls: ProviderCalls,
        jobs: JobService,
    ) -> None:
        super().__init__(db, queue)
        self.writer = writer
        self.events = events
        self.calls = calls
        self.jobs = jobs

    async def execute(self, item: WorkItem) -> None:
        job_id = item.ref_id or ""
        job = self.jobs.take_recent(job_id) or await self.db.run_read(repository.read_row(job_id))
        if job is None or job["status"] in FINISHED_JOB_STATUSES:
            await self.writer.write(lambda tx: self.queue.finish_in(tx, item))
            return
        request = ProviderRequest(
            modality=job["modality"],
            input=job["input"],
            model=job["model"],
            params=job["params"] or {},
        )
        org_id = job["organization_id"]
        try:
            credentials = await self.calls.admit(org_id, request, job["tier"])
        except BudgetExceeded as exc:  # the job fails without starting (nothing to keep)
            raise PermanentError(f"{exc.code}: {exc.message}") from exc
        except ProviderInputError as exc:
            raise PermanentError(str(exc)) from exc
        started_at = utcnow()
        call = asyncio.ensure_future(self.calls.run(request, job["tier"], credentials))
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
        record = self.calls.usage(
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
        if not start_recorded:
            self._started(tx, job, item, started_at)  # pending → started, in the same commit
        result = execution.result
        params = {"b_id": job["id"], "b_output": result.output, "b_now": utcnow()}
        if tx.conn.execute(repository.MARK_COMPLETED, params).rowcount != 1:
            return  # finished already (a re-executed job completes once)
        self.calls.record_unpaid_in(tx.conn, record)
        self.events.record_in(
            tx,
            "job.completed",
            organization_id=job["organization_id"],
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
        if not start_recorded:
            await self.writer.write(lambda tx: self._started(tx, job, item, started_at))
        async with self.db.write() as session:
            # Usage only when the job moved (a re-executed job records it once), and before
            # the event: the budget row lock precedes the event-order lock.
            record_usage = functools.partial(self.calls.record_in, session, [record])
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
