"""Business rules for workflow runs: create, start, pause, resume, cancel, resume a node, and
reading them back."""

from __future__ import annotations

import hashlib
import json
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.access.principal import Principal
from fabric_server.access.service import Access, WhenArchived
from fabric_server.db.unique import create_or_find
from fabric_server.engine.admission import InFlightLimit
from fabric_server.errors import Conflict, NotFound, ValidationFailed
from fabric_server.events.models import Event
from fabric_server.paging import PageRequest, split_page
from fabric_server.workflows import repository
from fabric_server.workflows.bindings import BindingError
from fabric_server.workflows.launch import RunLauncher
from fabric_server.workflows.lifecycle import RunLifecycle
from fabric_server.workflows.models import WorkflowNodeState, WorkflowRun
from fabric_server.workflows.schemas import RunCreate
from fabric_server.workflows.status import NodeStatus, RunStatus

LOG_EVENT_LIMIT = 5000


class RunService:
    def __init__(
        self,
        access: Access,
        launcher: RunLauncher,
        lifecycle: RunLifecycle,
        active_runs: InFlightLimit | None = None,
    ) -> None:
        self.access = access
        self.launcher = launcher
        self.lifecycle = lifecycle
        self.active_runs = active_runs

    async def create(
        self, session: AsyncSession, principal: Principal, body: RunCreate
    ) -> tuple[WorkflowRun, bool]:
        """A pending run (start it with `start`). A repeated idempotency key in the same
        organization returns the original run; with a different request, 409."""
        definition = await repository.get_definition(session, body.workflow_definition_id)
        missing = NotFound(f"Workflow definition {body.workflow_definition_id} was not found.")
        if definition is None:
            raise missing
        try:
            await self.access.authorize(
                session, principal, definition.organization_id, "workflow.run"
            )
        except NotFound:
            raise missing from None
        org_id = definition.organization_id
        digest = _request_hash(body)
        if body.idempotency_key:
            existing = await repository.run_by_idempotency_key(
                session, org_id, body.idempotency_key
            )
            if existing is not None:
                return _replay(existing, digest), False
        if self.active_runs is not None:
            await self.active_runs.admit(org_id)
        insert = partial(
            self.launcher.create_run,
            session,
            definition,
            context=body.context,
            created_by=principal.id,
            priority=body.priority,
            metadata=body.metadata,
            environment=body.environment,
            idempotency_key=body.idempotency_key,
            request_hash=digest,
        )
        if not body.idempotency_key:
            return await insert(), True
        # A concurrent request with the same key may win the race: answer with its run.
        find = partial(repository.run_by_idempotency_key, session, org_id, body.idempotency_key)
        run, created = await create_or_find(session, insert, find)
        return (run, True) if created else (_replay(run, digest), False)

    async def start(
        self, session: AsyncSession, principal: Principal, run_id: str, priority: int | None
    ) -> WorkflowRun:
        """Queue the run for the workers. Starting a run that already started changes
        nothing (so a retried create-and-start is safe); a cancelled run cannot start."""
        run = await self._locked(session, principal, run_id, "workflow.run")
        if run.queued_at is None and run.status.is_terminal:
            raise Conflict(
                f"Run {run_id} is {run.status} and cannot be started.",
                details={"status": run.status},
            )
        await self.launcher.queue_run(session, run, priority)
        return run

    async def cancel(
        self, session: AsyncSession, principal: Principal, run_id: str, reason: str | None
    ) -> WorkflowRun:
        """Cancel an unfinished run (also in an archived organization: it only stops work)."""
        run = await self._locked(session, principal, run_id, "workflow.run", when_archived="allow")
        if run.status.is_terminal:
            raise Conflict(
                f"Run {run_id} already {run.status}; only unfinished runs can be cancelled.",
                details={"status": run.status},
            )
        nodes = await repository.nodes_of(session, run.id)
        await self.lifecycle.cancel_run(session, run, nodes, reason)
        return run

    async def pause(
        self, session: AsyncSession, principal: Principal, run_id: str, reason: str | None
    ) -> WorkflowRun:
        """Stop dispatching the run's nodes (see `RunLifecycle.pause_run`); pausing a paused
        run changes nothing."""
        run = await self._locked(session, principal, run_id, "workflow.run")
        if run.status.is_terminal:
            raise Conflict(
                f"Run {run_id} already {run.status}; only unfinished runs can be paused.",
                details={"status": run.status},
            )
        if run.status != RunStatus.PAUSED:
            await self.lifecycle.pause_run(session, run, reason)
        return run

    async def resume_run(
        self, session: AsyncSession, principal: Principal, run_id: str
    ) -> WorkflowRun:
        """Dispatch a paused run's nodes again; resuming a run that is not paused changes
        nothing."""
        run = await self._locked(session, principal, run_id, "workflow.run")
        if run.status.is_terminal:
            raise Conflict(
                f"Run {run_id} already {run.status}; only unfinished runs can be resumed.",
                details={"status": run.status},
            )
        if run.status == RunStatus.PAUSED:
            nodes = await repository.nodes_of(session, run.id)
            await self.lifecycle.resume_run(session, run, nodes)
        return run

    async def bulk_cancel(
        self, session: AsyncSession, principal: Principal, run_ids: list[str]
    ) -> tuple[list[str], list[dict[str, str]]]:
        """Cancel each run that can be; say why for the others."""
        wanted = list(dict.fromkeys(run_ids))
        # Lock every target first, in id order, before any event is written: two bulk
        # cancels can then never wait on each other in a cycle.
        await session.execute(
            select(WorkflowRun.id)
            .where(WorkflowRun.id.in_(wanted))
            .order_by(WorkflowRun.id)
            .with_for_update()
        )
        cancelled: list[str] = []
        skipped: list[dict[str, str]] = []
        for run_id in wanted:
            try:
                await self.cancel(session, principal, run_id, "bulk cancel")
            except NotFound:
                skipped.append({"id": run_id, "reason": "not_found"})
            except Conflict as exc:
                status = (exc.details or {}).get("status")
                skipped.append({"id": run_id, "reason": f"already_{status}"})
            else:
                cancelled.append(run_id)
        return cancelled, skipped

    async def resume(
        self,
        session: AsyncSession,
        principal: Principal,
        run_id: str,
        node_key: str,
        data: dict[str, Any],
    ) -> WorkflowRun:
        run = await self._locked(session, principal, run_id, "workflow.run")
        nodes = await repository.nodes_of(session, run.id)
        node = next((n for n in nodes if n.node_key == node_key), None)
        if node is None:
            raise NotFound(f"Run {run_id} has no node {node_key!r}.")
        if node.status != NodeStatus.WAITING or run.status.is_terminal:
            raise Conflict(
                f"Node {node_key!r} is {node.status}, not waiting for input.",
                details={"status": node.status, "run_status": run.status},
            )
        try:
            await self.lifecycle.resume(session, run, node, nodes, data)
        except BindingError as exc:
            raise ValidationFailed(
                f"The resume data does not fit node {node_key!r}: {exc}",
                details={"errors": [{"path": "", "in": "body", "message": str(exc)}]},
            ) from exc
        return run

    async def get(self, session: AsyncSession, principal: Principal, run_id: str) -> WorkflowRun:
        run = await repository.get_run(session, run_id)
        return await self._visible(session, principal, run_id, run, "workflow.read")

    async def list_page(
        self,
        session: AsyncSession,
        principal: Principal,
        page: PageRequest,
        *,
        organization_id: str | None,
        status: str | None,
        definition_id: str | None,
    ) -> tuple[list[WorkflowRun], str | None]:
        org_ids = await self.access.listable_org_ids(
            session, principal, organization_id, "workflow.read"
        )
        rows = await repository.page_runs(
            session,
            org_ids,
            limit=page.limit + 1,
            after_id=page.after_id,
            status=RunStatus(status) if status is not None else None,
            definition_id=definition_id,
        )
        return split_page(rows, page.limit)

    async def children(
        self, session: AsyncSession, principal: Principal, run_id: str
    ) -> list[WorkflowRun]:
        run = await self.get(session, principal, run_id)
        return await repository.children_of(session, run.id)

    async def log(
        self, session: AsyncSession, principal: Principal, run_id: str
    ) -> tuple[WorkflowRun, list[WorkflowNodeState], list[Event]]:
        run = await self.get(session, principal, run_id)
        nodes = await repository.nodes_of(session, run.id)
        events = await repository.events_of_run(session, run.id, LOG_EVENT_LIMIT)
        return run, nodes, events

    async def node_states(self, session: AsyncSession, run_id: str) -> list[WorkflowNodeState]:
        return await repository.nodes_of(session, run_id)

    async def node_states_of(
        self, session: AsyncSession, run_ids: list[str]
    ) -> dict[str, list[WorkflowNodeState]]:
        return await repository.nodes_of_runs(session, run_ids)

    async def _locked(
        self,
        session: AsyncSession,
        principal: Principal,
        run_id: str,
        action: str,
        *,
        when_archived: WhenArchived = "refuse_writes",
    ) -> WorkflowRun:
        run = await repository.lock_run(session, run_id)
        return await self._visible(session, principal, run_id, run, action, when_archived)

    async def _visible(
        self,
        session: AsyncSession,
        principal: Principal,
        run_id: str,
        run: WorkflowRun | None,
        action: str,
        when_archived: WhenArchived = "refuse_writes",
    ) -> WorkflowRun:
        found, _ = await self.access.authorize_found(
            session,
            principal,
            run,
            action,
            missing=f"Workflow run {run_id} was not found.",
            when_archived=when_archived,
        )
        return found


def _request_hash(body: RunCreate) -> str:
    material = body.model_dump(exclude={"idempotency_key"})
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def _replay(existing: WorkflowRun, digest: str) -> WorkflowRun:
    if existing.request_hash != digest:
        raise Conflict(
            "This idempotency_key was already used with a different request.",
            details={"run_id": existing.id},
        )
    return existing
