"""The shell around the run state machine: each transition decided by `machine` from
snapshots of the rows, then written back with its effects in the caller's transaction.

Callers hold the run's row lock (`repository.lock_run`) and pass the run's node states, so a
transition and its consequences commit together or not at all.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.db.types import new_id, utcnow
from fabric_server.engine.queue import WorkQueue
from fabric_server.workflows import machine, repository
from fabric_server.workflows.effects import StartChildRuns
from fabric_server.workflows.launch import RunLauncher
from fabric_server.workflows.models import WorkflowNodeState, WorkflowRun
from fabric_server.workflows.nodes.base import SpawnChildren
from fabric_server.workflows.snapshots import NodeSnapshot, Step
from fabric_server.workflows.writer import StepWriter, run_snapshot

_Nodes = Sequence[WorkflowNodeState]


class RunLifecycle:
    def __init__(self, queue: WorkQueue, writer: StepWriter, launcher: RunLauncher) -> None:
        self.queue = queue
        self.writer = writer
        self.launcher = launcher

    # -- run transitions ---------------------------------------------------------------------

    async def start_run(self, session: AsyncSession, run: WorkflowRun, nodes: _Nodes) -> None:
        step = machine.start_run(run_snapshot(run), self._nodes(nodes), now=utcnow())
        await self._apply(session, run, nodes, step)

    async def pause_run(self, session: AsyncSession, run: WorkflowRun, reason: str | None) -> None:
        """See `machine.pause_run`."""
        step = machine.pause_run(run_snapshot(run), reason=reason, now=utcnow())
        await self._apply(session, run, (), step)

    async def resume_run(self, session: AsyncSession, run: WorkflowRun, nodes: _Nodes) -> None:
        """Undo `pause_run`: dispatch every node that is ready or became ready meanwhile."""
        snapshot, node_snapshots = run_snapshot(run), self._nodes(nodes)
        kind, refs = machine.resume_lookup(snapshot, node_snapshots)
        open_refs = await self.queue.open_refs(session, kind, refs)
        step = machine.resume_run(snapshot, node_snapshots, open_refs=open_refs, now=utcnow())
        await self._apply(session, run, nodes, step)

    async def fail_run(
        self, session: AsyncSession, run: WorkflowRun, nodes: _Nodes, error: str
    ) -> None:
        """End the run as failed: unfinished nodes are skipped, child runs cancelled."""
        step = machine.fail_run(run_snapshot(run), self._nodes(nodes), error=error, now=utcnow())
        await self._apply(session, run, nodes, step)

    async def cancel_run(
        self, session: AsyncSession, run: WorkflowRun, nodes: _Nodes, reason: str | None
    ) -> None:
        """See `machine.cancel_run`."""
        step = machine.cancel_run(
            run_snapshot(run), self._nodes(nodes), reason=reason, now=utcnow()
        )
        await self._apply(session, run, nodes, step)

    # -- node transitions --------------------------------------------------------------------

    async def begin_attempt(
        self, session: AsyncSession, run: WorkflowRun, node: WorkflowNodeState, nodes: _Nodes
    ) -> None:
        step = machine.begin_attempt(
            run_snapshot(run), self._nodes(nodes), node.node_key, now=utcnow()
        )
        await self._apply(session, run, nodes, step)

    async def succeed(
        self,
        session: AsyncSession,
        run: WorkflowRun,
        node: WorkflowNodeState,
        nodes: _Nodes,
        output: dict[str, Any],
        context_patch: dict[str, Any] | None = None,
    ) -> None:
        """See `machine.node_succeeded`."""
        step = machine.node_succeeded(
            run_snapshot(run),
            self._nodes(nodes),
            node.node_key,
            output,
            context_patch=context_patch,
            now=utcnow(),
        )
        await self._apply(session, run, nodes, step)

    async def record_failure(
        self,
        session: AsyncSession,
        run: WorkflowRun,
        node: WorkflowNodeState,
        nodes: _Nodes,
        error: str,
        *,
        permanent: bool,
    ) -> None:
        """See `machine.record_failure` (the backoff comes from the queue's retry policy)."""
        step = machine.record_failure(
            run_snapshot(run),
            self._nodes(nodes),
            node.node_key,
            error=error,
            permanent=permanent,
            retry_delay=self.queue.retry.delay(node.attempts),
            now=utcnow(),
        )
        await self._apply(session, run, nodes, step)

    async def fail_node(
        self,
        session: AsyncSession,
        run: WorkflowRun,
        node: WorkflowNodeState,
        nodes: _Nodes,
        error: str,
    ) -> None:
        """Fail the node and with it the run."""
        step = machine.fail_node(
            run_snapshot(run), self._nodes(nodes), node.node_key, error=error, now=utcnow()
        )
        await self._apply(session, run, nodes, step)

    async def wait_for_input(
        self,
        session: AsyncSession,
        run: WorkflowRun,
        node: WorkflowNodeState,
        nodes: _Nodes,
        prompt: str | None,
        timeout_seconds: float | None = None,
    ) -> None:
        """See `machine.wait_for_input`."""
        step = machine.wait_for_input(
            run_snapshot(run),
            self._nodes(nodes),
            node.node_key,
            prompt=prompt,
            timeout_seconds=timeout_seconds,
            now=utcnow(),
        )
        await self._apply(session, run, nodes, step)

    async def rearm_timeout(
        self,
        session: AsyncSession,
        run: WorkflowRun,
        node: WorkflowNodeState,
        nodes: _Nodes,
        seconds: float,
    ) -> None:
        step = machine.rearm_timeout(
            run_snapshot(run), self._nodes(nodes), node.node_key, seconds=seconds, now=utcnow()
        )
        await self._apply(session, run, nodes, step)

    async def resume(
        self,
        session: AsyncSession,
        run: WorkflowRun,
        node: WorkflowNodeState,
        nodes: _Nodes,
        data: dict[str, Any],
    ) -> None:
        """Complete a waiting node with `data`; the run runs again once nothing waits.

        Raises BindingError (changing nothing) when `data` lacks a field the node binds.
        """
        step = machine.resume_node(
            run_snapshot(run), self._nodes(nodes), node.node_key, data, now=utcnow()
        )
        await self._apply(session, run, nodes, step)

    async def time_out(
        self,
        session: AsyncSession,
        run: WorkflowRun,
        node: WorkflowNodeState,
        nodes: _Nodes,
        decision: dict[str, Any] | str,
    ) -> None:
        """See `machine.time_out`."""
        step = machine.time_out(
            run_snapshot(run), self._nodes(nodes), node.node_key, decision=decision, now=utcnow()
        )
        await self._apply(session, run, nodes, step)

    async def sleep(
        self,
        session: AsyncSession,
        run: WorkflowRun,
        node: WorkflowNodeState,
        nodes: _Nodes,
        seconds: float,
    ) -> None:
        """Stay `running` and wake after `seconds` through a work item due then."""
        step = machine.sleep(
            run_snapshot(run), self._nodes(nodes), node.node_key, seconds=seconds, now=utcnow()
        )
        await self._apply(session, run, nodes, step)

    async def keep_sleeping(
        self,
        session: AsyncSession,
        run: WorkflowRun,
        node: WorkflowNodeState,
        nodes: _Nodes,
        seconds: float,
    ) -> None:
        step = machine.keep_sleeping(
            run_snapshot(run), self._nodes(nodes), node.node_key, seconds=seconds, now=utcnow()
        )
        await self._apply(session, run, nodes, step)

    async def spawn_children(
        self,
        session: AsyncSession,
        run: WorkflowRun,
        node: WorkflowNodeState,
        nodes: _Nodes,
        spawn: SpawnChildren,
    ) -> None:
        """Start the child runs `spawn` asks for; the node waits for them. Fails the node
        when the definition is not found in the run's organization, or nesting is too deep."""
        definition_id = await self._definition_id(session, run.organization_id, spawn)
        step = machine.spawn_children(
            run_snapshot(run),
            self._nodes(nodes),
            node.node_key,
            definition_id=definition_id,
            wanted=spawn.definition_id or spawn.definition_name,
            contexts=spawn.contexts,
            child_ids=[new_id() for _ in spawn.contexts],
            now=utcnow(),
        )
        await self._apply(session, run, nodes, step)

    # -- internals ---------------------------------------------------------------------------

    def _nodes(self, nodes: _Nodes) -> list[NodeSnapshot]:
        return self.writer.node_snapshots(nodes)

    async def _apply(
        self, session: AsyncSession, run: WorkflowRun, nodes: _Nodes, step: Step
    ) -> None:
        spawn = functools.partial(self._start_children, run)
        await self.writer.apply(session, run, nodes, step, spawn)

    async def _start_children(
        self, parent: WorkflowRun, session: AsyncSession, effect: StartChildRuns
    ) -> None:
        definition = await repository.get_definition(session, effect.definition_id)
        assert definition is not None  # found in this transaction, just before
        children = zip(effect.run_ids, effect.contexts, strict=True)
        for index, (child_id, context) in enumerate(children):
            child = await self.launcher.create_run(
                session,
                definition,
                context=context,
                created_by=parent.created_by,
                priority=parent.priority,
                parent=(parent, effect.node_key, index),
                run_id=child_id,
            )
            await self.launcher.queue_run(session, child)

    async def _definition_id(
        self, session: AsyncSession, org_id: str, spawn: SpawnChildren
    ) -> str | None:
        if spawn.definition_id:
            found = await repository.get_definition(session, spawn.definition_id)
            return found.id if found is not None and found.organization_id == org_id else None
        if spawn.definition_name:
            found = await repository.definition_by_name(session, org_id, spawn.definition_name)
            return found.id if found is not None else None
        return None
