"""The run state machine's decisions applied with SQLAlchemy Core, in units of the
group-commit writer: the hot path of runs (starting them, executing and completing nodes,
waking and collecting, starting child runs).

A unit loads the run (row-locked on PostgreSQL; SQLite's writer is alone anyway) and its
nodes as snapshots, lets `machine` decide, and writes back only what changed, then performs
the effects: events, work items — leased to this process's worker from a pool reserved
before the unit was queued, handed over after commit — cancellations, child runs. Row
changes are written before the first event, so row locks always precede the event-order
lock. The ORM shell (`StepWriter`) applies the same decisions for the API's transactions.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.sql import Executable

from fabric_server.db.base import table_of
from fabric_server.db.types import new_id, utcnow
from fabric_server.db.writer import Tx
from fabric_server.engine.queue import LeasePool, WorkQueue
from fabric_server.events.outbox import EventRecorder
from fabric_server.workflows import machine
from fabric_server.workflows.effects import (
    NODE_WORK_KIND,
    RUN_CANCEL_KIND,
    WORK_ATTEMPTS,
    CancelChildRuns,
    CancelQueued,
    Enqueue,
    RecordEvent,
    StartChildRuns,
    WakeParentNode,
)
from fabric_server.workflows.graph import effective_node
from fabric_server.workflows.models import WorkflowDefinition, WorkflowNodeState, WorkflowRun
from fabric_server.workflows.nodes import OperationRegistry
from fabric_server.workflows.run_graph import RunGraph
from fabric_server.workflows.snapshots import NodeSnapshot, RunSnapshot, Step
from fabric_server.workflows.status import TERMINAL_RUN_STATUSES, RunStatus

RUNS = table_of(WorkflowRun)
NODES = table_of(WorkflowNodeState)
DEFINITIONS = table_of(WorkflowDefinition)

_RUN_FIELDS = ("status", "context", "output", "error", "priority")
_RUN_TIMES = ("queued_at", "started_at", "completed_at")
_NODE_FIELDS = ("status", "attempts", "state", "input", "output", "error")
_NODE_TIMES = ("started_at", "completed_at")
# Graphs never change once a run exists: parsed once per process, not at every load.
_GRAPHS_KEPT = 10_000

_RUN_COLUMNS = [c for c in RUNS.c if c.name != "graph"]
_LOAD_RUN = select(*_RUN_COLUMNS).where(RUNS.c.id == bindparam("b_id")).with_for_update()
_LOAD_GRAPH = select(RUNS.c.graph).where(RUNS.c.id == bindparam("b_id"))
_LOAD_NODES = select(NODES).where(NODES.c.run_id == bindparam("b_id")).order_by(NODES.c.position)
_INSERT_RUN = insert(RUNS)
_INSERT_NODE = insert(NODES)


@dataclass
class Loaded:
    """A run and its nodes as one unit read them, under the run's lock."""

    run: RunSnapshot
    nodes: list[NodeSnapshot]
    created_by: str | None
    node_ids: dict[str, str] = field(default_factory=dict)  # key -> row id
    root_run_id: str | None = None  # None: the run is the top of its tree

    @property
    def tree(self) -> str:
        """The id of the top of the run's tree."""
        return self.root_run_id or self.run.id

    def node_by_id(self, node_id: str) -> NodeSnapshot | None:
        return next((n for n in self.nodes if n.id == node_id), None)


class CoreSteps:
    def __init__(
        self,
        queue: WorkQueue,
        events: EventRecorder,
        operations: OperationRegistry,
        *,
        default_timeout: float,
    ) -> None:
        self.queue = queue
        self.events = events
        self.operations = operations
        self.default_timeout = default_timeout
        self._graphs: OrderedDict[str, RunGraph] = OrderedDict()
        self._updates: dict[tuple[str, frozenset[str]], Executable] = {}

    # -- reading ---------------------------------------------------------------------------

    def load(self, tx: Tx, run_id: str) -> Loaded | None:
        row = tx.conn.execute(_LOAD_RUN, {"b_id": run_id}).mappings().first()
        if row is None:
            return None
        graph = self._graph(tx.conn, run_id)
        run = RunSnapshot(
            id=row["id"],
            organization_id=row["organization_id"],
            status=row["status"],
            graph=graph,
            context=row["context"],
            priority=row["priority"],
            depth=row["depth"],
            parent_run_id=row["parent_run_id"],
            parent_node_key=row["parent_node_key"],
            output=row["output"],
            error=row["error"],
            queued_at=row["queued_at"],
            started_at=row["started_at"],
            completed_at=row["completed_at"],
        )
        nodes = [
            NodeSnapshot(
                id=n["id"],
                key=n["node_key"],
                operation=n["operation"],
                status=n["status"],
                attempts=n["attempts"],
                state=n["state"],
                input=n["input"],
                output=n["output"],
                error=n["error"],
                started_at=n["started_at"],
                completed_at=n["completed_at"],
                writes_output=self.operations.get(n["operation"]).writes_output,
            )
            for n in tx.conn.execute(_LOAD_NODES, {"b_id": run_id}).mappings()
        ]
        node_ids = {n.key: n.id for n in nodes}
        return Loaded(run, nodes, row["created_by"], node_ids, row["root_run_id"])

    def tree_size(self, tx: Tx, root_run_id: str) -> int:
        """How many runs are below the top of a tree (the limit on descendants)."""
        count = tx.conn.scalar(
            select(func.count()).select_from(RUNS).where(RUNS.c.root_run_id == root_run_id)
        )
        return int(count or 0)

    def _graph(self, conn: Connection, run_id: str) -> RunGraph:
        graph = self._graphs.get(run_id)
        if graph is None:
            graph = conn.execute(_LOAD_GRAPH, {"b_id": run_id}).scalar_one()
            self._graphs[run_id] = graph
            if len(self._graphs) > _GRAPHS_KEPT:
                self._graphs.popitem(last=False)
        return graph

    # -- writing ---------------------------------------------------------------------------

    def apply(self, tx: Tx, loaded: Loaded, steps: Sequence[Step], leases: LeasePool) -> None:
        """Write the rows the steps changed, then perform every step's effects in order."""
        if not steps:
            return
        now = utcnow()
        final = steps[-1]
        run_changes = _changes(loaded.run, final.run, _RUN_FIELDS + _RUN_TIMES)
        if run_changes:
            self._update(tx.conn, RUNS, loaded.run.id, {**run_changes, "updated_at": now})
        before = {node.id: node for node in loaded.nodes}
        for node in final.nodes:
            node_changes = _changes(before[node.id], node, _NODE_FIELDS + _NODE_TIMES)
            if node_changes:
                self._update(tx.conn, NODES, node.id, {**node_changes, "updated_at": now})
        for step in steps:
            for effect in step.effects:
                self._perform(tx, loaded, effect, leases, now)

    def _perform(
        self, tx: Tx, loaded: Loaded, effect: Any, leases: LeasePool, now: dt.datetime
    ) -> None:
        match effect:
            case RecordEvent(kind, organization_id, run_id, node_key, payload):
                self.events.record_in(
                    tx,
                    kind,
                    organization_id=organization_id,
                    run_id=run_id,
                    node_key=node_key,
                    payload=payload,
                )
            case Enqueue():
                immediate = effect.kind == NODE_WORK_KIND and not effect.delay_seconds
                lease = leases.take() if immediate else None
                self.queue.insert_in(
                    tx,
                    effect.kind,
                    ref_id=effect.ref_id,
                    organization_id=effect.organization_id,
                    payload=effect.payload,
                    priority=effect.priority,
                    max_attempts=effect.max_attempts,
                    delay_seconds=effect.delay_seconds,
                    lease=lease,
                )
            case CancelQueued(kind, ref_id):
                self.queue.cancel_in(tx, kind, ref_id)
            case CancelChildRuns(run_id, organization_id, priority):
                unfinished = tx.conn.scalars(
                    select(RUNS.c.id).where(
                        RUNS.c.parent_run_id == run_id,
                        RUNS.c.status.not_in(TERMINAL_RUN_STATUSES),
                    )
                )
                for child_id in unfinished:
                    self.queue.insert_in(
                        tx,
                        RUN_CANCEL_KIND,
                        ref_id=child_id,
                        organization_id=organization_id,
                        priority=priority,
                        max_attempts=WORK_ATTEMPTS,
                    )
            case WakeParentNode(parent_run_id, parent_node_key, organization_id, priority):
                self._wake_parent(tx, parent_run_id, parent_node_key, organization_id, priority)
            case StartChildRuns():
                self._start_children(tx, loaded, effect, leases, now)

    def _wake_parent(
        self, tx: Tx, run_id: str, node_key: str, organization_id: str, priority: int
    ) -> None:
        node_id = tx.conn.scalar(
            select(NODES.c.id).where(NODES.c.run_id == run_id, NODES.c.node_key == node_key)
        )
        if node_id is None:
            return
        # Children ending together wake their parent once: a wake-up already waiting will see
        # them all.
        if self.queue.has_queued_in(tx, NODE_WORK_KIND, node_id):
            return
        self.queue.insert_in(
            tx,
            NODE_WORK_KIND,
            ref_id=node_id,
            organization_id=organization_id,
            payload={"run_id": run_id},
            priority=priority,
            max_attempts=WORK_ATTEMPTS,
        )

    def _start_children(
        self, tx: Tx, parent: Loaded, effect: StartChildRuns, leases: LeasePool, now: dt.datetime
    ) -> None:
        """Create the child runs already started — their first nodes ready and queued, as
        `start_run` would leave them — in a few multi-row statements (a thousand children
        are one unit, not a thousand starts)."""
        found = (
            tx.conn.execute(select(DEFINITIONS).where(DEFINITIONS.c.id == effect.definition_id))
            .mappings()
            .first()
        )
        assert found is not None  # looked up just before, in this organization
        org_id = found["organization_id"]
        graph = RunGraph.parse(
            [
                effective_node(node, found["defaults"], self.operations, self.default_timeout)
                for node in found["nodes"]
            ]
        )
        run_rows: list[dict[str, Any]] = []
        node_rows: list[dict[str, Any]] = []
        events: list[tuple[str, str | None, str | None, str | None, dict[str, Any]]] = []
        enqueued: list[Enqueue] = []
        for index, (child_id, context) in enumerate(
            zip(effect.run_ids, effect.contexts, strict=True)
        ):
            self._graphs[child_id] = graph
            pending = RunSnapshot(
                id=child_id,
                organization_id=org_id,
                status=RunStatus.PENDING,
                graph=graph,
                context=context,
                priority=parent.run.priority,
                depth=parent.run.depth + 1,
                parent_run_id=parent.run.id,
                parent_node_key=effect.node_key,
                queued_at=now,
            )
            nodes = [
                NodeSnapshot(
                    id=new_id(),
                    key=spec.key,
                    operation=spec.operation,
                    writes_output=self.operations.get(spec.operation).writes_output,
                )
                for spec in graph
            ]
            started = machine.start_run(pending, nodes, now=now)
            run_rows.append(
                {
                    "id": child_id,
                    "organization_id": org_id,
                    "workflow_definition_id": found["id"],
                    "workflow_name": found["name"],
                    "definition_version": found["version"],
                    "graph": graph,
                    "status": started.run.status,
                    "context": context,
                    "output": None,
                    "error": None,
                    "priority": parent.run.priority,
                    "metadata": None,
                    "environment": None,
                    "parent_run_id": parent.run.id,
                    "parent_node_key": effect.node_key,
                    "parent_index": index,
                    "root_run_id": parent.tree,
                    "depth": parent.run.depth + 1,
                    "created_by": parent.created_by,
                    "idempotency_key": None,
                    "request_hash": None,
                    "queued_at": now,
                    "started_at": started.run.started_at,
                    "completed_at": None,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            for position, node in enumerate(started.nodes):
                node_rows.append(
                    {
                        "id": node.id,
                        "run_id": child_id,
                        "node_key": node.key,
                        "operation": node.operation,
                        "position": position,
                        "status": node.status,
                        "attempts": node.attempts,
                        "input": node.input,
                        "output": node.output,
                        "error": node.error,
                        "state": node.state,
                        "started_at": node.started_at,
                        "completed_at": node.completed_at,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            created = {
                "workflow_definition_id": found["id"],
                "workflow_name": found["name"],
                "parent_run_id": parent.run.id,
                "status": RunStatus.PENDING.value,
            }
            events.append(("workflow.run.created", org_id, child_id, None, created))
            queued = {"priority": parent.run.priority}
            events.append(("workflow.run.queued", org_id, child_id, None, queued))
            for child_effect in started.effects:
                if isinstance(child_effect, RecordEvent):
                    events.append(
                        (
                            child_effect.kind,
                            child_effect.organization_id,
                            child_effect.run_id,
                            child_effect.node_key,
                            child_effect.payload,
                        )
                    )
                elif isinstance(child_effect, Enqueue):
                    enqueued.append(child_effect)
        tx.conn.execute(_INSERT_RUN, run_rows)
        tx.conn.execute(_INSERT_NODE, node_rows)
        self.events.record_many_in(tx, events)
        for kind in sorted({e.kind for e in enqueued}):
            of_kind = [e for e in enqueued if e.kind == kind]
            self.queue.insert_many_in(
                tx,
                kind,
                [(e.ref_id, e.payload, leases.take()) for e in of_kind],
                organization_id=org_id,
                priority=parent.run.priority,
                max_attempts=WORK_ATTEMPTS,
            )

    def _update(self, conn: Connection, table: Any, row_id: str, values: dict[str, Any]) -> None:
        """UPDATE the row's changed columns, with a statement built once per column set."""
        names = frozenset(values)
        key = (table.name, names)
        statement = self._updates.get(key)
        if statement is None:
            statement = (
                update(table)
                .where(table.c.id == bindparam("b_id"))
                .values({name: bindparam(f"v_{name}") for name in names})
            )
            self._updates[key] = statement
        params = {f"v_{name}": value for name, value in values.items()}
        params["b_id"] = row_id
        conn.execute(statement, params)


def _changes(before: Any, after: Any, names: Sequence[str]) -> dict[str, Any]:
    """The fields a step changed: the machine replaces a value it changes, so identity
    tells (as in the ORM shell)."""
    return {
        name: getattr(after, name)
        for name in names
        if getattr(after, name) is not getattr(before, name)
    }
