"""Templates in node config: `{{context.path}}`, `{{inputs.name}}`, `{{nodes.<key>.path}}`.

Checked when a definition is saved: a malformed placeholder, an unknown root, an input the
node does not bind, or a node that does not exist or does not run before this one is refused
then. Rendered when a node runs: a reference with no value fails the node. A template never
renders as an empty string, and a literal `{{…}}` never leaves the server.

A templated config field is a string, or a JSON structure whose every string value is a
template (object keys are not: a key holding `{{` or `}}` is refused).

What one field renders to is limited (`FABRIC_WORKFLOW_MAX_RENDERED_BYTES`): the size is
counted as each placeholder is substituted, and rendering stops as soon as it passes the
limit (`TemplateTooLarge`), so a large value referenced many times never grows the server.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterator, Mapping
from typing import Any

from fabric_server.workflows.bindings import MISSING, lookup
from fabric_server.workflows.sizes import Budget, TooLarge, size_within

ROOTS = ("context", "inputs", "nodes")
_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_CONTEXT_OR_INPUTS = re.compile(r"^(context|inputs)(\.[A-Za-z0-9_-]{1,100})*$")
# Node keys may hold `.` and `:`; which dots belong to the key is decided against the keys
# that exist (the longest matching key wins).
_NODES = re.compile(r"^nodes(\.[A-Za-z0-9_:-]{1,100})+$")


class TemplateError(ValueError):
    """A template that cannot be parsed, a reference to nothing, or a variable with no value."""


TOO_LARGE_CODE = "template_output_too_large"


class TemplateTooLarge(TemplateError):
    """Rendering passed its size limit (the message starts with `template_output_too_large`)."""


def variables(template: str) -> list[str]:
    """The variables a template uses, in order; raises TemplateError when malformed."""
    found = []
    for match in _PLACEHOLDER.finditer(template):
        name = match.group(1).strip()
        if not (_CONTEXT_OR_INPUTS.match(name) or _NODES.match(name)):
            raise TemplateError(
                f"template variable {{{{{name}}}}} must be `context.<path>`, "
                "`inputs.<name>` or `nodes.<key>.<path>`"
            )
        found.append(name)
    leftover = _PLACEHOLDER.sub("", template)
    if "{{" in leftover or "}}" in leftover:
        raise TemplateError("template has an unbalanced `{{` or `}}`")
    return found


def strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """Every string of a config value, with its location (`config.json.items.0`), in order.

    Raises TemplateError for an object key holding `{{` or `}}`: keys are not rendered.
    """
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if "{{" in str(key) or "}}" in str(key):
                raise TemplateError(f"{where}: templates are not rendered in object keys ({key!r})")
            yield from strings(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings(item, f"{where}.{index}")


def check(
    value: Any,
    where: str,
    *,
    node: str,
    inputs: Collection[str],
    node_keys: Collection[str],
    upstream: Collection[str],
) -> list[str]:
    """Problems with the templates in a config value, for the node `node` whose bound inputs
    are `inputs`, in a definition of `node_keys` where `upstream` run before it."""
    problems = []
    try:
        found = [(at, name) for at, text in strings(value, where) for name in _safe(text, at)]
    except TemplateError as exc:
        return [str(exc)]
    for at, name in found:
        problem = _unresolved(name, node, inputs, node_keys, upstream)
        if problem:
            problems.append(f"{at}: template variable `{name}` {problem}")
    return problems


def render(template: str, scope: Mapping[str, Any], budget: Budget | None = None) -> str:
    """Substitute every `{{variable}}` from `scope` (`{"context", "inputs", "nodes"}`).

    Strings are inserted as they are; other values as compact JSON. With a `budget`, each
    insertion is counted against it (TooLarge once it is spent).
    """
    variables(template)

    def substitute(match: re.Match[str]) -> str:
        value = _value(match.group(1).strip(), scope)
        if budget is not None and not isinstance(value, str):
            size_within(value, budget.remaining)  # before building its text
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        if budget is not None:
            budget.spend(len(text))
        return text

    return _PLACEHOLDER.sub(substitute, template)


def render_value(
    value: Any,
    scope: Mapping[str, Any],
    *,
    keep_types: bool = False,
    where: str = "value",
    max_bytes: int | None = None,
) -> Any:
    """`value` with every string rendered (structures are copied, keys kept); an error names
    the string's location under `where` (`config.json.items.0: …`).

    With `keep_types`, a string that is exactly one placeholder (`"{{context.items}}"`)
    becomes the referenced value itself — a number, a list, an object — instead of its text.
    With `max_bytes`, rendering stops with TemplateTooLarge as soon as what the placeholders
    inserted passes that size.
    """
    budget = None if max_bytes is None else Budget(max_bytes)
    try:
        return _render_value(value, scope, keep_types, where, budget)
    except TooLarge:
        raise TemplateTooLarge(
            f"{TOO_LARGE_CODE}: {where} renders to more than {max_bytes} bytes "
            "(FABRIC_WORKFLOW_MAX_RENDERED_BYTES); reference smaller values"
        ) from None


def _render_value(
    value: Any, scope: Mapping[str, Any], keep_types: bool, where: str, budget: Budget | None
) -> Any:
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        try:
            if keep_types and whole and "{{" not in whole.group(1):
                variables(value)
                found = _value(whole.group(1).strip(), scope)
                if budget is not None:
                    budget.spend(size_within(found, budget.remaining))
                return found
            return render(value, scope, budget)
        except TemplateError as exc:
            raise TemplateError(f"{where}: {exc}") from exc
    if isinstance(value, Mapping):
        return {
            k: _render_value(v, scope, keep_types, f"{where}.{k}", budget) for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            _render_value(item, scope, keep_types, f"{where}.{index}", budget)
            for index, item in enumerate(value)
        ]
    return value


def split_node_reference(rest: str, keys: Collection[str]) -> tuple[str, tuple[str, ...]] | None:
    """`(key, path)` for the part after `nodes.`: the longest key it starts with, or None."""
    matches = [k for k in keys if rest == k or rest.startswith(f"{k}.")]
    if not matches:
        return None
    key = max(matches, key=len)
    tail = rest[len(key) + 1 :]
    return key, tuple(tail.split(".")) if tail else ()


def _safe(text: str, where: str) -> list[str]:
    try:
        return variables(text)
    except TemplateError as exc:
        raise TemplateError(f"{where}: {exc}") from exc


def _unresolved(
    name: str,
    node: str,
    inputs: Collection[str],
    node_keys: Collection[str],
    upstream: Collection[str],
) -> str | None:
    """Why `name` can never have a value in this node, or None when it may."""
    root, _, rest = name.partition(".")
    if root == "inputs" and rest:
        input_name = rest.split(".", 1)[0]
        if input_name not in inputs:
            bound = ", ".join(sorted(inputs)) or "none"
            return f"names no input of this node: bind `{input_name}` in inputs (bound: {bound})"
    if root == "nodes":
        found = split_node_reference(rest, node_keys)
        if found is None:
            return "names no node of this workflow"
        if found[0] == node:
            return "reads this node's own output, which does not exist while it runs"
        if found[0] not in upstream:
            return (
                f"reads node `{found[0]}`, which does not run before this one: "
                "add it to depends_on (directly or through another node)"
            )
    return None


def _value(name: str, scope: Mapping[str, Any]) -> Any:
    root, _, rest = name.partition(".")
    if root == "nodes":
        outputs: Mapping[str, Any] = scope.get("nodes") or {}
        found = split_node_reference(rest, outputs.keys())
        value = MISSING if found is None else lookup(outputs[found[0]], found[1])
    else:
        value = lookup(scope.get(root, {}), tuple(rest.split(".")) if rest else ())
    if value is MISSING:
        raise TemplateError(f"template variable `{name}` has no value")
    return value
