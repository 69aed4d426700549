"""A run's graph and a node's state: parsed from the stored JSON, written back unchanged."""

from __future__ import annotations

import datetime as dt

import pytest
from machine_helpers import node

from fabric_server.workflows.bindings import Binding
from fabric_server.workflows.node_state import (
    AwaitingChildren,
    AwaitingInput,
    Idle,
    Sleeping,
    dump_state,
    parse_state,
)
from fabric_server.workflows.run_graph import NodePolicy, RunGraph

STORED = [
    {
        "key": "fetch",
        "operation": "http.request",
        "config": {"url": "https://example.com", "timeout": 5},
        "inputs": [{"name": "url", "path": "$context.url"}],
        "outputs": [{"name": "json", "path": "$context.page"}],
        "depends_on": [],
        "policy": {"timeout_seconds": 5, "max_retries": 3},
        "name": "Fetch the page",
        "description": "descriptive fields are kept",
    },
    node("left", depends_on=["fetch"]),
    node("right", depends_on=["fetch"]),
    node("join", "workflow.fan_in", depends_on=["left", "right"]),
]


def test_the_stored_graph_parses_into_typed_specs_and_back() -> None:
    graph = RunGraph.parse(STORED)
    fetch = graph["fetch"]
    assert fetch.inputs == (Binding("url", "$context.url"),)
    assert fetch.outputs == (Binding("json", "$context.page"),)
    assert fetch.policy == NodePolicy(max_retries=3, timeout_seconds=5)
    assert graph["join"].depends_on == ("left", "right")
    assert [spec.key for spec in graph] == ["fetch", "left", "right", "join"]
    assert len(graph) == 4
    assert "join" in graph
    assert "nope" not in graph
    assert graph.dump() == STORED  # the same JSON, descriptive fields included
    assert RunGraph.parse(graph.dump()) == graph


def test_dependency_relations() -> None:
    graph = RunGraph.parse(STORED)
    assert graph.dependants("fetch") == ("left", "right")
    assert graph.downstream("fetch") == {"left", "right", "join"}
    assert graph.downstream("left") == {"join"}
    assert graph.downstream("join") == frozenset()
    assert graph.is_upstream("left")
    assert not graph.is_upstream("join")


WAKE_AT = dt.datetime(2025, 3, 1, 12, 0, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("stored", "state"),
    [
        ({}, Idle()),
        (
            {"wake_at": "2025-03-01T12:00:30+00:00", "sleep_seconds": 30.0},
            Sleeping(WAKE_AT, 30.0),
        ),
        ({"children": ["a", "b"]}, AwaitingChildren(("a", "b"))),
        ({"prompt": None}, AwaitingInput(None)),
        (
            {
                "prompt": "ok?",
                "timeout_seconds": 30.0,
                "timeout_at": "2025-03-01T12:00:30+00:00",
            },
            AwaitingInput("ok?", WAKE_AT, 30.0),
        ),
    ],
    ids=["idle", "sleeping", "children", "input", "input-with-timeout"],
)
def test_node_states_keep_the_json_shape_of_existing_rows(
    stored: dict[str, object], state: object
) -> None:
    assert parse_state(stored) == state
    assert dump_state(parse_state(stored)) == stored


def test_an_unknown_node_state_fails_loudly() -> None:
    with pytest.raises(ValueError, match="unknown node state"):
        parse_state({"surprise": 1})
