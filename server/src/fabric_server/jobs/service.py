"""Business rules for jobs: submission, idempotency, visibility, waiting for the outcome.

Submitting is the hot path: everything that decides (access, validation, credentials,
budget) is read before the write — from the per-process caches when they are fresh — and
the write itself (the job, its `job.created` event, its work item, the audit row) is one
unit of the group-commit writer. The work item is created already leased to this process's
worker when it has room, and handed over in memory once committed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.access.principal import Principal
from fabric_server.access.service import Access
from fabric_server.audit.recorder import audit_values, insert_audit_row
from fabric_server.db.database import Database
from fabric_server.db.types import new_id, utcnow
from fabric_server.db.versions import Versions
from fabric_server.db.writer import Tx, Writer
from fabric_server.engine.admission import InFlightLimit
from fabric_server.engine.queue import Lease, WorkQueue
from fabric_server.errors import Conflict, DomainError, NotFound, Unprocessable
from fabric_server.events.hub import EventHub
from fabric_server.events.outbox import EventRecorder
from fabric_server.events.repository import EventFilter
from fabric_server.events.waiting import wait_for_event
from fabric_server.jobs import repository
from fabric_server.jobs.models import Job
from fabric_server.jobs.schemas import JobCreate
from fabric_server.jobs.status import FINISHED_JOB_STATUSES, JobStatus
from fabric_server.paging import PageRequest, split_page
from fabric_server.provider_calls.use_case import ProviderCalls
from fabric_server.providers.base import (
    Credentials,
    ProviderInputError,
    ProviderRequest,
    validate_input,
)
from fabric_server.usage.models import UsageRecord

JOB_WORK_KIND = "job.execute"
TERMINAL_KINDS = ("job.completed", "job.failed")
# Most jobs handed over in memory whose row is remembered for the worker (no re-read).
_RECENT_LIMIT = 10_000

JobRow = dict[str, Any]


class JobService:
    def __init__(
        self,
        db: Database,
        writer: Writer,
        versions: Versions,
        access: Access,
        queue: WorkQueue,
        events: EventRecorder,
        calls: ProviderCalls,
        hub: EventHub,
        *,
        max_attempts: int,
        active_jobs: InFlightLimit | None = None,
    ) -> None:
        self.db = db
        self.writer = writer
        self.versions = versions
        self.access = access
        self.queue = queue
        self.events = events
        self.calls = calls
        self.hub = hub
        self.max_attempts = max_attempts
        self.active_jobs = active_jobs
        # Jobs just handed to this process's worker, so it need not read them back, with the
        # cache counters their submission was decided under.
        self._recent: dict[str, tuple[JobRow, Mapping[str, int] | None]] = {}

    async def submit(self, principal: Principal, body: JobCreate) -> tuple[JobRow, bool]:
        """Create a job and queue it; returns (job, created). A repeated idempotency key
        with the same request returns the original job; with a different request, 409. A
        paid request in an organization whose monthly budget is spent is a 402
        `budget_exceeded`, and nothing is queued."""
        ((job, created),) = await self.submit_many(principal, [body], single=True)
        return job, created

    async def submit_many(
        self, principal: Principal, bodies: Sequence[JobCreate], *, single: bool = False
    ) -> list[tuple[JobRow, bool]]:
        """Create and queue several jobs in one transaction: all of them, or none (the first
        refused one answers for the whole batch, its index in the error's `details`)."""
        planned = []
        for index, body in enumerate(bodies):
            with _at(index, single):
                planned.append(await self._plan(principal, body))
        keys = [(p.org_id, p.body.idempotency_key) for p in planned if p.body.idempotency_key]
        if len(set(keys)) != len(keys):
            raise Unprocessable(
                "Each job of a batch needs its own idempotency_key.",
                details={"errors": [{"path": "jobs", "message": "idempotency_key repeated"}]},
            )
        existing = await self.db.run_read(repository.read_by_keys(keys)) if keys else {}
        for index, plan in enumerate(planned):
            found = existing.get((plan.org_id, plan.body.idempotency_key or ""))
            with _at(index, single):
                if found is not None:
                    plan.replay_of = _replay(found, plan.digest)
                else:
                    async with self.db.read() as session:
                        await self.calls.check_budget_in(
                            session, plan.org_id, plan.request, plan.body.tier, plan.credentials
                        )
        if self.active_jobs is not None:
            adding = Counter(plan.org_id for plan in planned if plan.replay_of is None)
            for org_id, count in sorted(adding.items()):
                await self.active_jobs.admit(org_id, count)
        first = planned[0]
        audit = audit_values(
            resource_id=(first.replay_of or first.job)["id"] if single else None,
            organization_id=first.org_id,
        )
        for plan in planned:
            if plan.replay_of is None:
                plan.lease = self.queue.lease_locally(JOB_WORK_KIND, plan.org_id)
        known = self.versions.snapshot()

        def create(tx: Tx) -> list[tuple[JobRow, bool]]:
            results = [
                self._create_in(tx, index, plan, known, single)
                for index, plan in enumerate(planned)
            ]
            if audit is not None:
                resource_id = results[0][0]["id"] if single else None
                insert_audit_row(tx.conn, {**audit, "resource_id": resource_id})
            return results

        leases = [plan.lease for plan in planned if plan.lease is not None]
        try:
            results = await self.writer.write(create)
        except BaseException:
            for lease in leases:
                lease.cancel()
            raise
        for plan, (_, created) in zip(planned, results, strict=True):
            if not created and plan.lease is not None:
                plan.lease.cancel()
        return results

    def _create_in(
        self,
        tx: Tx,
        index: int,
        plan: _Plan,
        known: Mapping[str, int] | None,
        single: bool,
    ) -> tuple[JobRow, bool]:
        """Write one planned job in a unit (or find the one that won a race for its key)."""
        if plan.replay_of is not None:
            return plan.replay_of, False
        job, key = plan.job, plan.body.idempotency_key
        if key:
            found = repository.read_by_key(plan.org_id, key)(tx.conn)
            if found is not None:
                with _at(index, single):
                    return _replay(found, plan.digest), False
        tx.conn.execute(repository.INSERT, job)
        self.events.record_in(
            tx,
            "job.created",
            organization_id=plan.org_id,
            job_id=job["id"],
            payload={"modality": plan.body.modality, "status": JobStatus.PENDING.value},
        )
        self.queue.insert_in(
            tx,
            JOB_WORK_KIND,
            ref_id=job["id"],
            organization_id=plan.org_id,
            priority=plan.body.priority,
            max_attempts=self.max_attempts,
            lease=plan.lease,
        )
        if plan.lease is not None:
            tx.after_commit(lambda: self._remember(job, known))
        return job, True

    async def _plan(self, principal: Principal, body: JobCreate) -> _Plan:
        """Everything decided before the write: where, whether allowed, what to run."""
        async with self.db.read() as session:
            org_id = await self.access.organization_for(session, principal, body.organization_id)
            await self.access.authorize(
                session, principal, org_id, "job.create", when_archived="refuse"
            )
            request, credentials = await self._validate(session, org_id, body)
        digest = _request_hash(body)
        now = utcnow()
        job: dict[str, Any] = {
            "id": new_id(),
            "organization_id": org_id,
            "created_by": principal.id,
            "api_key_id": principal.api_key_id,
            "modality": body.modality,
            "tier": body.tier,
            "model": body.model,
            "input": body.input,
            "params": body.params,
            "status": JobStatus.PENDING,
            "output": None,
            "error": None,
            "workflow_run_id": None,
            "idempotency_key": body.idempotency_key,
            "request_hash": digest,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
            "started_at": None,
            "completed_at": None,
        }
        return _Plan(body, org_id, request, credentials, digest, job)

    def take_recent(self, job_id: str) -> JobRow | None:
        """The row of a job this process just created, once (for its worker, which then
        answers as of the counters the submission read)."""
        found = self._recent.pop(job_id, None)
        if found is None:
            return None
        self.versions.adopt(found[1])
        return found[0]

    async def get(self, session: AsyncSession, principal: Principal, job_id: str) -> Job:
        job = await repository.get(session, job_id)
        if job is None:
            raise NotFound(f"Job {job_id} was not found.")
        await self._authorize_read(session, principal, job.organization_id, job_id)
        return job

    async def view(
        self,
        principal: Principal,
        job_id: str,
        *,
        wait: float = 0.0,
        gone: Callable[[], Awaitable[None]] | None = None,
    ) -> JobRow:
        """The job as the caller may see it; with `wait`, once it is completed or failed, or
        when `wait` seconds have passed (still running), whichever comes first. `gone`
        returns when the caller went away, which ends the wait too."""
        if wait <= 0:
            return await self._read(principal, job_id)
        read: dict[str, JobRow] = {}

        async def ended() -> bool:
            read["row"] = await self._read(principal, job_id)
            return read["row"]["status"] in FINISHED_JOB_STATUSES

        where = EventFilter(job_id=job_id, kinds=TERMINAL_KINDS, include_internal=True)
        woken = await wait_for_event(self.hub, where, ended, wait, gone)
        if not woken or read["row"]["status"] in FINISHED_JOB_STATUSES:
            return read["row"]
        return await self._read(principal, job_id)

    async def list_page(
        self,
        session: AsyncSession,
        principal: Principal,
        page: PageRequest,
        *,
        organization_id: str | None,
        status: str | None,
    ) -> tuple[list[Job], str | None]:
        org_ids = await self.access.listable_org_ids(
            session, principal, organization_id, "job.read"
        )
        rows = await repository.page(
            session,
            org_ids,
            limit=page.limit + 1,
            after_id=page.after_id,
            status=JobStatus(status) if status is not None else None,
        )
        return split_page(rows, page.limit)

    async def usage(
        self, session: AsyncSession, principal: Principal, job_id: str
    ) -> tuple[Job, list[UsageRecord]]:
        job = await self.get(session, principal, job_id)
        return job, await repository.usage_for_job(session, job.id)

    async def _read(self, principal: Principal, job_id: str) -> JobRow:
        row = await self.versions.run_read(repository.read_row(job_id))
        if row is None:
            raise NotFound(f"Job {job_id} was not found.")
        async with self.db.read() as session:
            await self._authorize_read(session, principal, row["organization_id"], job_id)
        return row

    async def _authorize_read(
        self, session: AsyncSession, principal: Principal, org_id: str, job_id: str
    ) -> None:
        try:
            await self.access.authorize(session, principal, org_id, "job.read")
        except NotFound:
            raise NotFound(f"Job {job_id} was not found.") from None

    def _remember(self, job: JobRow, known: Mapping[str, int] | None) -> None:
        if len(self._recent) >= _RECENT_LIMIT:
            self._recent.clear()
        self._recent[job["id"]] = (job, known)

    async def _validate(
        self, session: AsyncSession, org_id: str, body: JobCreate
    ) -> tuple[ProviderRequest, Credentials]:
        """Input no routed provider can serve is a 422 `validation_failed`; a provider the
        organization has no credentials for is a 422 `provider_not_configured` — both before
        anything is queued."""
        request = ProviderRequest(
            modality=body.modality, input=body.input, model=body.model, params=body.params or {}
        )
        try:
            validate_input(request)
            credentials = await self.calls.credentials_in(session, org_id, request, body.tier)
        except ProviderInputError as exc:
            raise Unprocessable(
                str(exc), details={"errors": [{"path": "input", "message": str(exc)}]}
            ) from exc
        return request, credentials


@dataclass
class _Plan:
    """A job decided on, not yet written."""

    body: JobCreate
    org_id: str
    request: ProviderRequest
    credentials: Credentials
    digest: str
    job: JobRow
    replay_of: JobRow | None = None
    lease: Lease | None = None


@contextlib.contextmanager
def _at(index: int, single: bool) -> Iterator[None]:
    """Errors about one job of a batch say which one (`details.index`)."""
    try:
        yield
    except DomainError as exc:
        if not single:
            exc.details = {**(exc.details or {}), "index": index}
            exc.message = f"Job {index} of the batch: {exc.message}"
        raise


def _request_hash(body: JobCreate) -> str:
    material = body.model_dump(exclude={"organization_id", "idempotency_key"})
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def _replay(existing: JobRow, digest: str) -> JobRow:
    if existing["request_hash"] != digest:
        raise Conflict(
            "This idempotency_key was already used with a different request.",
            details={"job_id": existing["id"]},
        )
    return existing
