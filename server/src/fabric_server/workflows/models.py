"""Tables of the workflow domain: definitions, runs and the state of each node of a run."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeEngine

from fabric_server.db.base import Base, Timestamped
from fabric_server.db.types import JSONType, StatusType, new_id
from fabric_server.workflows.node_state import Idle, NodeState, dump_state, parse_state
from fabric_server.workflows.run_graph import RunGraph
from fabric_server.workflows.status import NodeStatus, RunStatus


class _JSONColumn(TypeDecorator[Any]):
    """JSON on SQLite, JSONB on PostgreSQL (the DDL of `JSONType`)."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return dialect.type_descriptor(JSONB() if dialect.name == "postgresql" else JSON())


class GraphType(_JSONColumn):
    """A run's graph: stored as the list of node objects, read back as a `RunGraph`."""

    cache_ok = True

    def process_bind_param(self, value: RunGraph | None, dialect: Dialect) -> Any:
        return None if value is None else value.dump()

    def process_result_value(self, value: Any, dialect: Dialect) -> RunGraph | None:
        return None if value is None else RunGraph.parse(value)


class NodeStateType(_JSONColumn):
    """A node's `NodeState`, stored in the JSON shape of `node_state.dump_state`."""

    cache_ok = True

    def process_bind_param(self, value: NodeState | None, dialect: Dialect) -> Any:
        return None if value is None else dump_state(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> NodeState | None:
        return None if value is None else parse_state(value)


class WorkflowDefinition(Timestamped, Base):
    """A reusable DAG of nodes; upserted by (organization, name), each upsert a new version."""

    __tablename__ = "workflow_definitions"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer, default=1)
    description: Mapped[str | None] = mapped_column(Text)
    nodes: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    defaults: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_by: Mapped[str | None] = mapped_column(String(36))


class WorkflowRun(Timestamped, Base):
    """One execution of a definition, with its own context.

    `graph` is the definition's nodes as they were when the run was created (defaults
    applied), so upserting a definition never changes a run in flight.
    """

    __tablename__ = "workflow_runs"
    __table_args__ = (
        UniqueConstraint("organization_id", "idempotency_key"),
        Index("ix_workflow_runs_org_id", "organization_id", "id"),
        # Unfinished runs of an organization (its limit) without walking the finished ones.
        Index("ix_workflow_runs_org_status", "organization_id", "status"),
        Index("ix_workflow_runs_parent", "parent_run_id", "parent_index"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    workflow_definition_id: Mapped[str] = mapped_column(ForeignKey("workflow_definitions.id"))
    workflow_name: Mapped[str] = mapped_column(String(200))
    definition_version: Mapped[int] = mapped_column(Integer)
    graph: Mapped[RunGraph] = mapped_column(GraphType)
    status: Mapped[RunStatus] = mapped_column(StatusType(RunStatus), default=RunStatus.PENDING)
    context: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    output: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    error: Mapped[str | None] = mapped_column(Text)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    # `metadata` is reserved on declarative classes; the column keeps the wire name.
    run_metadata: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType)
    environment: Mapped[str | None] = mapped_column(String(100))
    parent_run_id: Mapped[str | None] = mapped_column(ForeignKey("workflow_runs.id"))
    parent_node_key: Mapped[str | None] = mapped_column(String(200))
    parent_index: Mapped[int | None] = mapped_column(Integer)
    # The top of this run's tree (None: this run is a top-level one, or predates the column).
    root_run_id: Mapped[str | None] = mapped_column(String(36), index=True)
    depth: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str | None] = mapped_column(String(36))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    queued_at: Mapped[dt.datetime | None] = mapped_column()
    started_at: Mapped[dt.datetime | None] = mapped_column()
    completed_at: Mapped[dt.datetime | None] = mapped_column()


class WorkflowNodeState(Timestamped, Base):
    """Where one node of one run stands. `state` keeps what a node needs between executions
    (the wake-up time of a delay, the child runs it waits for, the prompt it waits with)."""

    __tablename__ = "workflow_node_states"
    __table_args__ = (UniqueConstraint("run_id", "node_key"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    run_id: Mapped[str] = mapped_column(ForeignKey("workflow_runs.id", ondelete="CASCADE"))
    node_key: Mapped[str] = mapped_column(String(200))
    operation: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer)
    status: Mapped[NodeStatus] = mapped_column(StatusType(NodeStatus), default=NodeStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    input: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    output: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    error: Mapped[str | None] = mapped_column(Text)
    state: Mapped[NodeState] = mapped_column(NodeStateType, default=Idle())
    started_at: Mapped[dt.datetime | None] = mapped_column()
    completed_at: Mapped[dt.datetime | None] = mapped_column()
