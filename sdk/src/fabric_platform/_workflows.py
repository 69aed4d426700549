"""Workflows: register definitions, start runs, wait for them, manage them, follow their events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any, Optional, cast

from ._base import QueryValue, encode_path, query
from ._core import AsyncClientCore, SyncClientCore
from ._errors import FabricConflictError, FabricError
from ._paging import aiterate_pages, iterate_pages
from ._streaming import RUN_TERMINAL_KINDS, AsyncEventStream, EventStream
from ._waiting import Waiter
from .types import BulkCancelResult, RunLog, RunPage, WorkflowDefinition, WorkflowRun

DEFINITIONS_PATH = "/v1/workflow-definitions"
RUNS_PATH = "/v1/workflow-runs"
TERMINAL_RUN_STATUSES = frozenset({"completed", "failed", "cancelled"})


def _definition_body(
    name: str,
    nodes: Sequence[Mapping[str, Any]],
    defaults: Optional[Mapping[str, Any]],
    description: Optional[str],
    organization_id: Optional[str],
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name}
    if organization_id is not None:  # unknown: the server uses the API key's organization
        body["organization_id"] = organization_id
    body["nodes"] = [dict(node) for node in nodes]
    if defaults:
        body["defaults"] = dict(defaults)
    if description is not None:
        body["description"] = description
    return body


def _run_body(
    workflow_id: str,
    context: Optional[Mapping[str, Any]],
    priority: Optional[int],
    metadata: Optional[Mapping[str, Any]],
    environment: Optional[str],
    idempotency_key: Optional[str],
) -> dict[str, Any]:
    body: dict[str, Any] = {"workflow_definition_id": workflow_id, "context": dict(context or {})}
    optional = {
        "priority": priority,
        "metadata": dict(metadata) if metadata is not None else None,
        "environment": environment,
        "idempotency_key": idempotency_key,
    }
    body.update({name: value for name, value in optional.items() if value is not None})
    return body


def _start_body(priority: Optional[int]) -> dict[str, Any]:
    return {} if priority is None else {"priority": priority}


def _reason_body(reason: Optional[str]) -> dict[str, Any]:
    return {} if reason is None else {"reason": reason}


def _id_of(data: Any, what: str) -> str:
    if isinstance(data, dict) and isinstance(data.get("id"), str) and data["id"]:
        return cast(str, data["id"])
    raise FabricError(f"the server's answer to {what} carries no id: {data!r}")


def _needs_start(run: Any) -> bool:
    # A run replayed through its idempotency key may already be started (or over): leave it.
    return not isinstance(run, dict) or run.get("status", "pending") == "pending"


def _run_path(template: str, run_id: str, *more: str) -> str:
    return encode_path(RUNS_PATH + template, run_id, *more)


def _list_runs_params(
    organization_id: Optional[str],
    status: Optional[str],
    workflow_definition_id: Optional[str],
    limit: int,
    cursor: Optional[str],
) -> dict[str, QueryValue]:
    return query(
        organization_id=organization_id,
        status=status,
        workflow_definition_id=workflow_definition_id,
        limit=limit,
        cursor=cursor,
    )


def _events_params(include_internal: bool) -> dict[str, QueryValue]:
    return query(include_internal=True if include_internal else None)


def _run_waiter(run_id: str, timeout: Optional[float], poll_interval: float, now: float) -> Waiter:
    return Waiter(
        "run",
        run_id,
        TERMINAL_RUN_STATUSES,
        timeout=timeout,
        poll_interval=poll_interval,
        now=now,
    )


def _wait_params(held: float) -> Optional[dict[str, QueryValue]]:
    return {"wait": round(held, 3)} if held > 0 else None


class WorkflowsMethods(SyncClientCore):
    def upsert_workflow(
        self,
        name: str,
        nodes: Sequence[Mapping[str, Any]],
        defaults: Optional[Mapping[str, Any]] = None,
        *,
        description: Optional[str] = None,
        organization_id: Optional[str] = None,
    ) -> str:
        """Register the workflow ``name`` (or update it in place) and return its id.

        It belongs to ``organization_id``, else to the client's organization; ``defaults``
        apply to every node that does not set the value itself.
        """
        org = organization_id or self.organization_id
        body = _definition_body(name, nodes, defaults, description, org)
        return _id_of(self._request("POST", DEFINITIONS_PATH, body=body), "upsert_workflow")

    def list_workflows(self, *, organization_id: Optional[str] = None) -> list[WorkflowDefinition]:
        """The workflow definitions visible to the caller (of one organization, if given)."""
        params = query(organization_id=organization_id)
        return cast(
            "list[WorkflowDefinition]", self._request("GET", DEFINITIONS_PATH, params=params)
        )

    def get_workflow(self, workflow_id: str) -> WorkflowDefinition:
        """The workflow definition ``workflow_id``; `FabricNotFoundError` if there is none."""
        path = encode_path(DEFINITIONS_PATH + "/{}", workflow_id)
        return cast(WorkflowDefinition, self._request("GET", path))

    def run_workflow(
        self,
        workflow_id: str,
        context: Optional[Mapping[str, Any]] = None,
        priority: Optional[int] = None,
        *,
        metadata: Optional[Mapping[str, Any]] = None,
        environment: Optional[str] = None,
        idempotency_key: Optional[str] = None,
    ) -> str:
        """Create a run of the workflow with the initial ``context``, start it, return its id.

        The run is queued by ``priority`` (higher runs sooner); ``metadata`` and
        ``environment`` (a label such as ``"staging"``) are recorded on it. With an
        ``idempotency_key`` the call is retried safely, and calling again with the same key
        returns the same run instead of starting another one.
        """
        body = _run_body(workflow_id, context, priority, metadata, environment, idempotency_key)
        run = self._request("POST", RUNS_PATH, body=body, idempotency_key=idempotency_key)
        run_id = _id_of(run, "run_workflow")
        if _needs_start(run):
            try:
                self._request("POST", _run_path("/{}/start", run_id), body=_start_body(priority))
            except FabricConflictError:
                if idempotency_key is None:
                    raise  # without a key, nobody else could have started this new run
        return run_id

    def wait_for_run(
        self, run_id: str, poll_interval: float = 1.0, timeout: Optional[float] = 300.0
    ) -> WorkflowRun:
        """Return the run once it is completed, failed or cancelled.

        Each read asks the server to answer as soon as the run ends (one round trip); against
        a server without that, it polls every ``poll_interval`` seconds. Raises
        `FabricWaitTimeout` (a builtin `TimeoutError` too) after ``timeout`` seconds;
        ``timeout=None`` waits for as long as it takes.
        """
        waiter = _run_waiter(run_id, timeout, poll_interval, self._clock())
        path = _run_path("/{}", run_id)
        while True:
            asked_at = self._clock()
            held = waiter.hold(asked_at)
            run = self._request("GET", path, params=_wait_params(held), held=held)
            pause = waiter.after(run, asked_at, held, self._clock())
            if pause is None:
                return cast(WorkflowRun, run)
            if pause:
                self._sleep(pause)

    def get_run(self, run_id: str) -> WorkflowRun:
        """The run ``run_id``, with its status, context, output and node states."""
        return cast(WorkflowRun, self._request("GET", _run_path("/{}", run_id)))

    def list_runs(
        self,
        *,
        organization_id: Optional[str] = None,
        status: Optional[str] = None,
        workflow_definition_id: Optional[str] = None,
        limit: int = 50,
        cursor: Optional[str] = None,
    ) -> RunPage:
        """One page of runs, newest first: ``{"items": [...], "next_cursor": str | None}``;
        `iter_runs` walks every page."""
        params = _list_runs_params(organization_id, status, workflow_definition_id, limit, cursor)
        return cast(RunPage, self._request("GET", RUNS_PATH, params=params))

    def iter_runs(
        self,
        *,
        organization_id: Optional[str] = None,
        status: Optional[str] = None,
        workflow_definition_id: Optional[str] = None,
        page_size: int = 50,
    ) -> Iterator[WorkflowRun]:
        """Every matching run, newest first, fetching pages as iteration needs them."""
        yield from iterate_pages(
            lambda cursor: self.list_runs(
                organization_id=organization_id,
                status=status,
                workflow_definition_id=workflow_definition_id,
                limit=page_size,
                cursor=cursor,
            )
        )

    def cancel_run(self, run_id: str, *, reason: Optional[str] = None) -> WorkflowRun:
        """Cancel the run (its unfinished nodes are skipped); returns the updated run.
        ``reason`` is recorded in the ``workflow.run.cancelled`` event."""
        path = _run_path("/{}/cancel", run_id)
        return cast(WorkflowRun, self._request("POST", path, body=_reason_body(reason)))

    def bulk_cancel_runs(self, run_ids: Sequence[str]) -> BulkCancelResult:
        """Cancel several runs: ``{"cancelled": [ids], "skipped": [{"id", "reason"}]}``."""
        body = {"run_ids": list(run_ids)}
        return cast(BulkCancelResult, self._request("POST", RUNS_PATH + "/bulk-cancel", body=body))

    def pause_run(self, run_id: str, *, reason: Optional[str] = None) -> WorkflowRun:
        """Pause the run: no further node starts until `resume_run`; nodes already executing
        finish. Returns the run (status ``paused``); pausing it again changes nothing, and
        a run that already ended raises `FabricConflictError`.
        """
        path = _run_path("/{}/pause", run_id)
        return cast(WorkflowRun, self._request("POST", path, body=_reason_body(reason)))

    def resume_run(self, run_id: str) -> WorkflowRun:
        """Resume a paused run: every node that became ready meanwhile is dispatched.
        Returns the run; a run that is not paused is left as it is, one that already ended
        raises `FabricConflictError`. (To answer a waiting node, see `resume_node`.)
        """
        return cast(WorkflowRun, self._request("POST", _run_path("/{}/resume", run_id)))

    def run_log(self, run_id: str) -> RunLog:
        """The run's event history and the state of each of its nodes."""
        return cast(RunLog, self._request("GET", _run_path("/{}/log", run_id)))

    def list_children(self, run_id: str) -> list[WorkflowRun]:
        """The runs started by this run (fan-out branches, sub-workflows)."""
        return cast("list[WorkflowRun]", self._request("GET", _run_path("/{}/children", run_id)))

    def resume_node(
        self, run_id: str, node_key: str, data: Optional[Mapping[str, Any]] = None
    ) -> Any:
        """Release the node ``node_key``, which waits for input, handing it ``data``.

        ``data`` becomes the node's output and the run goes on; returns the server's answer.
        """
        path = _run_path("/{}/nodes/{}/resume", run_id, node_key)
        return self._request("POST", path, body=dict(data or {}))

    def stream_run_events(self, run_id: str, include_internal: bool = False) -> EventStream:
        """Iterate over the run's events: its history first, then live ones as they happen.

        The iteration ends after ``workflow.run.completed``, ``.failed`` or ``.cancelled``. A
        dropped connection is resumed where it stopped (``Last-Event-ID``).
        """
        path = _run_path("/{}/events", run_id)
        params = _events_params(include_internal)
        return self._stream(path, params, terminal_kinds=RUN_TERMINAL_KINDS)


class AsyncWorkflowsMethods(AsyncClientCore):
    async def upsert_workflow(
        self,
        name: str,
        nodes: Sequence[Mapping[str, Any]],
        defaults: Optional[Mapping[str, Any]] = None,
        *,
        description: Optional[str] = None,
        organization_id: Optional[str] = None,
    ) -> str:
        """Register the workflow ``name`` (or update it in place) and return its id."""
        org = organization_id or self.organization_id
        body = _definition_body(name, nodes, defaults, description, org)
        return _id_of(await self._request("POST", DEFINITIONS_PATH, body=body), "upsert_workflow")

    async def list_workflows(
        self, *, organization_id: Optional[str] = None
    ) -> list[WorkflowDefinition]:
        """The workflow definitions visible to the caller (of one organization, if given)."""
        params = query(organization_id=organization_id)
        definitions = await self._request("GET", DEFINITIONS_PATH, params=params)
        return cast("list[WorkflowDefinition]", definitions)

    async def get_workflow(self, workflow_id: str) -> WorkflowDefinition:
        """The workflow definition ``workflow_id``; `FabricNotFoundError` if there is none."""
        path = encode_path(DEFINITIONS_PATH + "/{}", workflow_id)
        return cast(WorkflowDefinition, await self._request("GET", path))

    async def run_workflow(
        self,
        workflow_id: str,
        context: Optional[Mapping[str, Any]] = None,
        priority: Optional[int] = None,
        *,
        metadata: Optional[Mapping[str, Any]] = None,
        environment: Optional[str] = None,
        idempotency_key: Optional[str] = None,
    ) -> str:
        """Create and start a run of the workflow; returns its id (see `FabricClient`)."""
        body = _run_body(workflow_id, context, priority, metadata, environment, idempotency_key)
        run = await self._request("POST", RUNS_PATH, body=body, idempotency_key=idempotency_key)
        run_id = _id_of(run, "run_workflow")
        if _needs_start(run):
            path = _run_path("/{}/start", run_id)
            try:
                await self._request("POST", path, body=_start_body(priority))
            except FabricConflictError:
                if idempotency_key is None:
                    raise
        return run_id

    async def wait_for_run(
        self, run_id: str, poll_interval: float = 1.0, timeout: Optional[float] = 300.0
    ) -> WorkflowRun:
        """Return the run once it is completed, failed or cancelled (a long wait per read,
        polling against servers without one); raises `FabricWaitTimeout` after ``timeout``
        seconds."""
        waiter = _run_waiter(run_id, timeout, poll_interval, self._clock())
        path = _run_path("/{}", run_id)
        while True:
            asked_at = self._clock()
            held = waiter.hold(asked_at)
            run = await self._request("GET", path, params=_wait_params(held), held=held)
            pause = waiter.after(run, asked_at, held, self._clock())
            if pause is None:
                return cast(WorkflowRun, run)
            if pause:
                await self._sleep(pause)

    async def get_run(self, run_id: str) -> WorkflowRun:
        """The run ``run_id``, with its status, context, output and node states."""
        return cast(WorkflowRun, await self._request("GET", _run_path("/{}", run_id)))

    async def list_runs(
        self,
        *,
        organization_id: Optional[str] = None,
        status: Optional[str] = None,
        workflow_definition_id: Optional[str] = None,
        limit: int = 50,
        cursor: Optional[str] = None,
    ) -> RunPage:
        """One page of runs, newest first: ``{"items": [...], "next_cursor": str | None}``."""
        params = _list_runs_params(organization_id, status, workflow_definition_id, limit, cursor)
        return cast(RunPage, await self._request("GET", RUNS_PATH, params=params))

    async def iter_runs(
        self,
        *,
        organization_id: Optional[str] = None,
        status: Optional[str] = None,
        workflow_definition_id: Optional[str] = None,
        page_size: int = 50,
    ) -> AsyncIterator[WorkflowRun]:
        """Every matching run, newest first (``async for``), fetching pages as needed."""
        pages = aiterate_pages(
            lambda cursor: self.list_runs(
                organization_id=organization_id,
                status=status,
                workflow_definition_id=workflow_definition_id,
                limit=page_size,
                cursor=cursor,
            )
        )
        async for run in pages:
            yield run

    async def cancel_run(self, run_id: str, *, reason: Optional[str] = None) -> WorkflowRun:
        """Cancel the run (its unfinished nodes are skipped); returns the updated run."""
        path = _run_path("/{}/cancel", run_id)
        return cast(WorkflowRun, await self._request("POST", path, body=_reason_body(reason)))

    async def bulk_cancel_runs(self, run_ids: Sequence[str]) -> BulkCancelResult:
        """Cancel several runs: ``{"cancelled": [ids], "skipped": [{"id", "reason"}]}``."""
        body = {"run_ids": list(run_ids)}
        result = await self._request("POST", RUNS_PATH + "/bulk-cancel", body=body)
        return cast(BulkCancelResult, result)

    async def pause_run(self, run_id: str, *, reason: Optional[str] = None) -> WorkflowRun:
        """Pause the run: no further node starts until `resume_run` (see `FabricClient`)."""
        path = _run_path("/{}/pause", run_id)
        return cast(WorkflowRun, await self._request("POST", path, body=_reason_body(reason)))

    async def resume_run(self, run_id: str) -> WorkflowRun:
        """Resume a paused run: every node that became ready meanwhile is dispatched."""
        return cast(WorkflowRun, await self._request("POST", _run_path("/{}/resume", run_id)))

    async def run_log(self, run_id: str) -> RunLog:
        """The run's event history and the state of each of its nodes."""
        return cast(RunLog, await self._request("GET", _run_path("/{}/log", run_id)))

    async def list_children(self, run_id: str) -> list[WorkflowRun]:
        """The runs started by this run (fan-out branches, sub-workflows)."""
        children = await self._request("GET", _run_path("/{}/children", run_id))
        return cast("list[WorkflowRun]", children)

    async def resume_node(
        self, run_id: str, node_key: str, data: Optional[Mapping[str, Any]] = None
    ) -> Any:
        """Release the waiting node ``node_key`` with ``data`` as its output."""
        path = _run_path("/{}/nodes/{}/resume", run_id, node_key)
        return await self._request("POST", path, body=dict(data or {}))

    def stream_run_events(self, run_id: str, include_internal: bool = False) -> AsyncEventStream:
        """``async for`` over the run's events (history, then live), ending after the run's
        terminal event; ``await`` it first to connect before iterating.
        """
        path = _run_path("/{}/events", run_id)
        params = _events_params(include_internal)
        return self._stream(path, params, terminal_kinds=RUN_TERMINAL_KINDS)
