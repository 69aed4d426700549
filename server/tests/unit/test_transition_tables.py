"""The declared transition tables: what they allow, and that they match the wire contract."""

from __future__ import annotations

import typing

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from fabric_server.db.types import StatusType
from fabric_server.engine.status import WORK_TRANSITIONS, WorkStatus
from fabric_server.jobs import schemas as job_schemas
from fabric_server.jobs.status import JOB_TRANSITIONS, JobStatus
from fabric_server.transitions import IllegalTransition, TransitionTable
from fabric_server.workflows import schemas as workflow_schemas
from fabric_server.workflows.status import (
    NODE_TRANSITIONS,
    RUN_TRANSITIONS,
    TERMINAL_RUN_STATUSES,
    NodeStatus,
    RunStatus,
)


def test_statuses_are_the_values_the_api_documents() -> None:
    assert set(typing.get_args(workflow_schemas.RunStatus)) == {s.value for s in RunStatus}
    assert set(typing.get_args(workflow_schemas.NodeStatus)) == {s.value for s in NodeStatus}
    assert set(typing.get_args(job_schemas.JobStatus)) == {s.value for s in JobStatus}


def test_an_illegal_change_raises_and_names_the_entity() -> None:
    with pytest.raises(IllegalTransition, match="workflow run cannot go from 'completed' to"):
        RUN_TRANSITIONS.check(RunStatus.COMPLETED, RunStatus.RUNNING)
    with pytest.raises(IllegalTransition, match="'pending' to 'completed'"):
        NODE_TRANSITIONS.check(NodeStatus.PENDING, NodeStatus.COMPLETED)


def test_each_change_records_its_event() -> None:
    assert RUN_TRANSITIONS.check(RunStatus.PENDING, RunStatus.RUNNING) == "workflow.run.started"
    assert RUN_TRANSITIONS.check(RunStatus.PAUSED, RunStatus.RUNNING) == "workflow.run.resumed"
    assert RUN_TRANSITIONS.check(RunStatus.WAITING, RunStatus.RUNNING) == "workflow.run.resumed"
    assert NODE_TRANSITIONS.check(NodeStatus.RUNNING, NodeStatus.READY) == "workflow.node.retrying"
    assert JOB_TRANSITIONS.event_into(JobStatus.FAILED) == "job.failed"
    assert WORK_TRANSITIONS.check(WorkStatus.RUNNING, WorkStatus.DONE) is None


@pytest.mark.parametrize(
    "table",
    [RUN_TRANSITIONS, NODE_TRANSITIONS, JOB_TRANSITIONS, WORK_TRANSITIONS],
    ids=lambda t: t.entity,
)
def test_finished_statuses_never_change(table: TransitionTable[typing.Any]) -> None:
    finished = {
        "workflow run": TERMINAL_RUN_STATUSES,
        "workflow node": {NodeStatus.COMPLETED, NodeStatus.FAILED, NodeStatus.SKIPPED},
        "job": {JobStatus.COMPLETED, JobStatus.FAILED},
        "work item": {WorkStatus.DONE, WorkStatus.FAILED, WorkStatus.CANCELLED},
    }[table.entity]
    assert not [edge for edge in table.edges() if edge[0] in finished]
    reached = {target for _, target, _ in table.edges()}
    assert finished <= reached


def test_guarded_updates_take_the_sources_from_the_table() -> None:
    assert JOB_TRANSITIONS.sources(JobStatus.STARTED) == {JobStatus.PENDING, JobStatus.STARTED}
    assert JOB_TRANSITIONS.sources(JobStatus.COMPLETED) == {JobStatus.STARTED}
    assert WORK_TRANSITIONS.sources(WorkStatus.CANCELLED) == {WorkStatus.QUEUED, WorkStatus.RUNNING}
    # A run ends from any unfinished status, but only completes from running or paused.
    assert RUN_TRANSITIONS.sources(RunStatus.COMPLETED) == {RunStatus.RUNNING, RunStatus.PAUSED}


def test_a_table_refuses_a_change_declared_twice() -> None:
    with pytest.raises(ValueError, match="declared twice"):
        TransitionTable("job", [((JobStatus.PENDING,), JobStatus.STARTED, None)] * 2)


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()], ids=["sqlite", "pg"])
def test_status_columns_store_the_plain_value(dialect: typing.Any) -> None:
    column = StatusType(RunStatus)
    assert column.compile(dialect=dialect) == "VARCHAR(16)"  # the DDL of a string column
    assert column.process_bind_param(RunStatus.PAUSED, dialect) == "paused"
    assert column.process_bind_param("paused", dialect) == "paused"  # filters from queries
    assert column.process_result_value("paused", dialect) is RunStatus.PAUSED
    with pytest.raises(ValueError, match="'resting' is not a valid RunStatus"):
        column.process_result_value("resting", dialect)
