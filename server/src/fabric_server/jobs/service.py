"""Business rules for jobs: submission, idempotency, visibility."""

from __future__ import annotations

import hashlib
import json

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.access.service import Access
from fabric_server.api.auth import Principal
from fabric_server.api.pagination import PageRequest, split_page
from fabric_server.budgets.service import BudgetService
from fabric_server.db.models import Job, UsageRecord
from fabric_server.engine.queue import WorkQueue
from fabric_server.errors import Conflict, NotFound, Unprocessable
from fabric_server.events.outbox import EventRecorder
from fabric_server.jobs import repository
from fabric_server.jobs.schemas import JobCreate
from fabric_server.jobs.status import JobStatus
from fabric_server.providers.base import (
    Credentials,
    ProviderInputError,
    ProviderRequest,
    validate_input,
)
from fabric_server.providers.registry import ProviderRegistry

JOB_WORK_KIND = "job.execute"


class JobService:
    def __init__(
        self,
        access: Access,
        queue: WorkQueue,
        events: EventRecorder,
        providers: ProviderRegistry,
        budgets: BudgetService,
        *,
        max_attempts: int,
    ) -> None:
        self.access = access
        self.queue = queue
        self.events = events
        self.providers = providers
        self.budgets = budgets
        self.max_attempts = max_attempts

    async def submit(
        self, session: AsyncSession, principal: Principal, body: JobCreate
    ) -> tuple[Job, bool]:
        """Create a job and queue it; returns (job, created). A repeated idempotency key
        with the same request returns the original job; with a different request, 409. A
        paid request in an organization whose monthly budget is spent is a 402
        `budget_exceeded`, and nothing is queued."""
        org_id = await self.access.organization_for(session, principal, body.organization_id)
        await self.access.authorize(session, principal, org_id, "job.create")
        request, credentials = await self._validate(session, org_id, body)
        digest = _request_hash(body)
        if body.idempotency_key:
            existing = await repository.by_idempotency_key(session, org_id, body.idempotency_key)
            if existing is not None:
                return _replay(existing, digest), False
        await self.budgets.check(session, org_id, request, body.tier, credentials)
        job = Job(
            organization_id=org_id,
            created_by=principal.id,
            api_key_id=principal.api_key_id,
            modality=body.modality,
            tier=body.tier,
            model=body.model,
            input=body.input,
            params=body.params,
            idempotency_key=body.idempotency_key,
            request_hash=digest,
        )
        try:
            async with session.begin_nested():
                session.add(job)
                await session.flush()
        except IntegrityError:
            # A concurrent request with the same key won the race; answer with its job.
            assert body.idempotency_key is not None
            existing = await repository.by_idempotency_key(session, org_id, body.idempotency_key)
            if existing is None:
                raise
            return _replay(existing, digest), False
        await self.events.record(
            session,
            "job.created",
            organization_id=org_id,
            job_id=job.id,
            payload={"modality": job.modality, "status": job.status.value},
        )
        await self.queue.enqueue(
            session,
            JOB_WORK_KIND,
            ref_id=job.id,
            organization_id=org_id,
            priority=body.priority,
            max_attempts=self.max_attempts,
        )
        return job, True

    async def get(self, session: AsyncSession, principal: Principal, job_id: str) -> Job:
        job = await repository.get(session, job_id)
        if job is None:
            raise NotFound(f"Job {job_id} was not found.")
        try:
            await self.access.authorize(session, principal, job.organization_id, "job.read")
        except NotFound:
            raise NotFound(f"Job {job_id} was not found.") from None
        return job

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
            credentials = await self.providers.credentials(session, org_id)
            self.providers.plan(request, body.tier, credentials)
        except ProviderInputError as exc:
            raise Unprocessable(
                str(exc), details={"errors": [{"path": "input", "message": str(exc)}]}
            ) from exc
        return request, credentials


def _request_hash(body: JobCreate) -> str:
    material = body.model_dump(exclude={"organization_id", "idempotency_key"})
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def _replay(existing: Job, digest: str) -> Job:
    if existing.request_hash != digest:
        raise Conflict(
            "This idempotency_key was already used with a different request.",
            details={"job_id": existing.id},
        )
    return existing
