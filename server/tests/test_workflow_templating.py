"""Context bindings and prompt templates, on their own."""

from __future__ import annotations

import pytest

from fabric_server.workflows.bindings import (
    BindingError,
    apply_outputs,
    deep_merge,
    parse_path,
    resolve_inputs,
)
from fabric_server.workflows.templating import TemplateError, render, variables

CONTEXT = {"user": {"name": "ada", "tags": ["x", "y"]}, "n": 3, "none": None}


def test_paths_parse_into_segments() -> None:
    assert parse_path("$context.user.name") == ("user", "name")
    for bad in ("context.user", "$context.", "$context.a..b", "$context.a b", 7, None):
        with pytest.raises(BindingError):
            parse_path(bad)


def test_inputs_resolve_from_the_context_and_skip_what_is_absent() -> None:
    bindings = [
        {"name": "who", "path": "$context.user.name"},
        {"name": "second", "path": "$context.user.tags.1"},
        {"name": "nothing", "path": "$context.none"},
        {"name": "gone", "path": "$context.user.age"},
    ]
    assert resolve_inputs(CONTEXT, bindings) == {"who": "ada", "second": "y", "nothing": None}


def test_outputs_write_into_the_context() -> None:
    context = {"a": {"keep": 1}, "b": "scalar"}
    apply_outputs(
        context,
        [{"name": "x", "path": "$context.a.x"}, {"name": "y", "path": "$context.b.deep"}],
        {"x": [1], "y": True, "unbound": 0},
    )
    assert context == {"a": {"keep": 1, "x": [1]}, "b": {"deep": True}}
    with pytest.raises(BindingError, match="'z'"):
        apply_outputs(context, [{"name": "z", "path": "$context.z"}], {"x": 1})


def test_deep_merge_merges_objects_and_replaces_the_rest() -> None:
    base = {"a": {"b": 1, "c": [1]}, "d": 1}
    merged = deep_merge(base, {"a": {"c": [2], "e": 3}, "d": {"f": 1}})
    assert merged == {"a": {"b": 1, "c": [2], "e": 3}, "d": {"f": 1}}
    assert base == {"a": {"b": 1, "c": [1]}, "d": 1}


def test_templates_render_context_and_inputs() -> None:
    scope = {"context": CONTEXT, "inputs": {"q": "why"}}
    assert render("Hi {{ context.user.name }}, {{inputs.q}}?", scope) == "Hi ada, why?"
    assert render("{{context.n}} {{context.user.tags}} {{context.none}}", scope) == (
        '3 ["x","y"] null'
    )
    with pytest.raises(TemplateError, match=r"`context.user.age` has no value"):
        render("{{context.user.age}}", scope)


def test_malformed_templates_are_caught_before_running() -> None:
    assert variables("{{context.a}} and {{inputs.b.c}}") == ["context.a", "inputs.b.c"]
    for bad in ("{{secrets.key}}", "{{context.a", "oops }}", "{{}}", "{{context.a b}}"):
        with pytest.raises(TemplateError):
            variables(bad)
