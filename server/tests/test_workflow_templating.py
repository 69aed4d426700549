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
from fabric_server.workflows.templating import (
    TemplateError,
    check,
    render,
    render_value,
    variables,
)

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
    for bad in (
        "{{secrets.key}}",
        "{{context.a",
        "oops }}",
        "{{}}",
        "{{context.a b}}",
        "{{nodes}}",
        "{{context.a:b}}",
    ):
        with pytest.raises(TemplateError):
            variables(bad)


OUTPUTS = {"draft": {"content": "text", "usage": {"n": 2}}, "fetch.v2": {"status": 200}}


def test_node_references_read_the_outputs_of_earlier_nodes() -> None:
    scope = {"context": {}, "inputs": {}, "nodes": OUTPUTS}
    assert render("{{nodes.draft.content}} {{nodes.draft.usage.n}}", scope) == "text 2"
    # A key holding dots: the longest key that matches wins.
    assert render("{{nodes.fetch.v2.status}}", scope) == "200"
    assert render("{{nodes.draft}}", scope) == '{"content":"text","usage":{"n":2}}'
    for missing in ("{{nodes.draft.title}}", "{{nodes.later.content}}"):
        with pytest.raises(TemplateError, match="has no value"):
            render(missing, scope)


def test_structures_render_every_string_and_name_the_missing_one() -> None:
    scope = {"context": {"n": 3, "tags": ["a"], "who": "ada"}, "inputs": {}, "nodes": OUTPUTS}
    body = {
        "text": "{{context.who}} wrote {{nodes.draft.content}}",
        "count": "{{context.n}}",
        "items": ["{{context.tags}}", 7, None, {"deep": "n={{context.n}}"}],
        "{{not a key}}": "kept",
    }
    assert render_value(body, scope, keep_types=True) == {
        "text": "ada wrote text",
        "count": 3,
        "items": [["a"], 7, None, {"deep": "n=3"}],
        "{{not a key}}": "kept",
    }
    assert render_value(body, scope)["count"] == "3"  # without keep_types: always text
    with pytest.raises(TemplateError) as raised:
        render_value({"a": [1, {"b": "{{context.gone}}"}]}, scope, where="config.json")
    message = "config.json.a.1.b: template variable `context.gone` has no value"
    assert str(raised.value) == message


def problems_of(value: object, node: str = "me") -> list[str]:
    return check(
        value,
        "config.json",
        node=node,
        inputs=("topic",),
        node_keys=("first", "me", "later"),
        upstream=("first",),
    )


def test_references_that_can_never_have_a_value_are_found_when_saving() -> None:
    fine = {
        "a": "{{context.anything.at.all}} {{inputs.topic.name}} {{inputs}}",
        "b": ["{{nodes.first.content}}", "{{context}}"],
    }
    assert problems_of(fine) == []
    assert problems_of({"x": ["{{inputs.other}}"]}) == [
        "config.json.x.0: template variable `inputs.other` names no input of this node: "
        "bind `other` in inputs (bound: topic)"
    ]
    assert "names no node of this workflow" in problems_of("{{nodes.ghost.content}}")[0]
    assert "own output" in problems_of("{{nodes.me.content}}")[0]
    later = problems_of("{{nodes.later.content}}")
    assert "`later`, which does not run before this one" in later[0]
    assert problems_of({"k": "{{context.a"}) == [
        "config.json.k: template has an unbalanced `{{` or `}}`"
    ]
    assert "not rendered in object keys" in problems_of({"{{context.k}}": 1})[0]
    assert len(problems_of(["{{inputs.x}}", "{{nodes.ghost}}"])) == 2
