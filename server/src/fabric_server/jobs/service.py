"""Business rules for jobs: submission, idempotency, visibility, waiting for the outcome.

Submitting is the hot path: everything that decides (access, validation, credentials,
budget) is read before the write — from the per-process caches when they are fresh — and
the write itself (the job, its `job.created` event, its work item, the audit row) is one
unit of the group-commit writer. The work item is created already leased to this process's
worker when it has room, and handed over in memory once committed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.access.service import Access
from fabric_server.api.auth import Principal
from fabric_server.api.pagination import PageRequest, split_page
from fabric_server.audit.recorder import audit_values, insert_audit_row
from fabric_server.budgets.service import BudgetService
from fabric_server.db.database import Database
from fabric_server.db.models import Job, UsageRecord
from fabric_server.db.types import new_id, utcnow
from fabric_server.db.versions import Versions
from fabric_server.db.writer import Tx, Writer
from fabric_server.engine.queue import Lease, WorkQueue
from fabric_server.errors import Conflict, NotFound, ValidationFailed
from fabric_server.events.hub import EventHub
from fabric_server.events.outbox import EventRecorder
from fabric_server.events.repository import EventFilter
from fabric_server.jobs import repository
from fabric_server.jobs.schemas import JobCreate
from fabric_server.providers.base import (
    Credentials,
    ProviderInputError,
    ProviderRequest,
    validate_input,
)
from fabric_server.providers.registry import ProviderRegistry

JOB_WORK_KIND = "job.execute"
TERMINAL_STATUSES = ("completed", "failed")
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
        providers: ProviderRegistry,
        budgets: BudgetService,
        hub: EventHub,
        *,
        max_attempts: int,
    ) -> None:
        self.db = db
        self.writer = writer
        self.versions = versions
        self.access = access
        self.queue = queue
        self.events = events
        self.providers = providers
        self.budgets = budgets
        self.hub = hub
        self.max_attempts = max_attempts
        # Jobs just handed to this process's worker, so it need not read them back, with the
        # cache counters their submission was decided under.
        self._recent: dict[str, tuple[JobRow, Mapping[str, int] | None]] = {}

    async def submit(self, principal: Principal, body: JobCreate) -> tuple[JobRow, bool]:
        """Create a job and queue it; returns (job, created). A repeated idempotency key
        with the same request returns the original job; with a different request, 409. A
        paid request in an organization whose monthly budget is spent is a 402
        `budget_exceeded`, and nothing is queued."""
        async with self.db.read() as session:
            org_id = await self.access.organization_for(session, principal, body.organization_id)
            await self.access.authorize(
                session, principal, org_id, "job.create", when_archived="refuse"
            )
            request, credentials = await self._validate(session, org_id, body)
        digest = _request_hash(body)
        if body.idempotency_key:
            existing = await self.db.run_read(repository.read_by_key(org_id, body.idempotency_key))
            if existing is not None:
                return await self._replay(existing, digest), False
        async with self.db.read() as session:
            await self.budgets.check(session, org_id, request, body.tier, credentials)
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
            "status": "pending",
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
        audit = audit_values(resource_id=job["id"], organization_id=org_id)
        lease = self.queue.lease_locally(JOB_WORK_KIND)
        known = self.versions.snapshot()

        def create(tx: Tx) -> tuple[JobRow, bool]:
            if body.idempotency_key:
                # A concurrent request with the same key may have won the race.
                found = repository.read_by_key(org_id, body.idempotency_key)(tx.conn)
                if found is not None:
                    _audit(tx, audit, found["id"])
                    return found, False
            tx.conn.execute(repository.INSERT, job)
            self.events.record_in(
                tx,
                "job.created",
                organization_id=org_id,
                job_id=job["id"],
                payload={"modality": body.modality, "status": "pending"},
            )
            self.queue.insert_in(
                tx,
                JOB_WORK_KIND,
                ref_id=job["id"],
                organization_id=org_id,
                priority=body.priority,
                max_attempts=self.max_attempts,
                lease=lease,
            )
            _audit(tx, audit, job["id"])
            if lease is not None:
                tx.after_commit(lambda: self._remember(job, known))
            return job, True

        row, created = await _with_lease(lease, self.writer.write(create))
        if not created:
            return _replay(row, digest), False
        return row, True

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
        # Subscribed before reading, so an end committed after the read is not missed.
        subscription = await self.hub.subscribe(
            EventFilter(job_id=job_id, kinds=TERMINAL_KINDS, include_internal=True)
        )
        try:
            row = await self._read(principal, job_id)
            if row["status"] in TERMINAL_STATUSES:
                return row
            if not await _first_of(subscription.queue.get(), gone, wait):
                return row
        finally:
            self.hub.unsubscribe(subscription)
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
            session, org_ids, limit=page.limit + 1, after_id=page.after_id, status=status
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

    async def _replay(self, existing: JobRow, digest: str) -> JobRow:
        found = _replay(existing, digest)
        audit = audit_values(resource_id=found["id"], organization_id=found["organization_id"])
        if audit is not None:
            await self.writer.write(lambda tx: _audit(tx, audit, found["id"]))
        return found

    def _remember(self, job: JobRow, known: Mapping[str, int] | None) -> None:
        if len(self._recent) >= _RECENT_LIMIT:
            self._recent.clear()
        self._recent[job["id"]] = (job, known)

    async def _validate(
        self, session: AsyncSession, org_id: str, body: JobCreate
    ) -> tuple[ProviderRequest, Credentials]:
        """Bad input is a 400 `validation_failed`; a provider the organization has no
        credentials for is a 400 `provider_not_configured` — both before anything is queued."""
        request = ProviderRequest(
            modality=body.modality, input=body.input, model=body.model, params=body.params or {}
        )
        try:
            validate_input(request)
            credentials = await self.providers.credentials(session, org_id)
            self.providers.plan(request, body.tier, credentials)
        except ProviderInputError as exc:
            raise ValidationFailed(
                str(exc), details={"errors": [{"path": "input", "message": str(exc)}]}
            ) from exc
        return request, credentials


async def _first_of(
    event: Awaitable[Any], gone: Callable[[], Awaitable[None]] | None, timeout: float
) -> bool:
    """Wait for `event`; False when the caller went away or the time ran out first."""
    tasks = {asyncio.ensure_future(event)}
    watcher = asyncio.ensure_future(gone()) if gone is not None else None
    if watcher is not None:
        tasks.add(watcher)
    try:
        done, _ = await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return bool(done) and watcher not in done


async def _with_lease(lease: Lease | None, write: Awaitable[tuple[JobRow, bool]]) -> Any:
    """Await the write; a lease it did not use (failed, or found an existing job) is
    given back."""
    try:
        row, created = await write
    except BaseException:
        if lease is not None:
            lease.cancel()
        raise
    if not created and lease is not None:
        lease.cancel()
    return row, created


def _audit(tx: Tx, audit: dict[str, Any] | None, resource_id: str) -> None:
    if audit is not None:
        insert_audit_row(tx.conn, {**audit, "resource_id": resource_id})


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
