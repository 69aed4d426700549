"""`{{context.x}}` / `{{inputs.x}}` templates: checked when a definition is saved, rendered
when a node runs. A variable with no value is an error, never an empty string."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from fabric_server.workflows.bindings import MISSING, lookup

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_VARIABLE = re.compile(r"^(context|inputs)(\.[A-Za-z0-9_-]{1,100})*$")


class TemplateError(ValueError):
    """A template that cannot be parsed, or a variable with no value."""


def variables(template: str) -> list[str]:
    """The variables a template uses, in order; raises TemplateError when malformed."""
    found = []
    for match in _PLACEHOLDER.finditer(template):
        name = match.group(1).strip()
        if not _VARIABLE.match(name):
            raise TemplateError(
                f"template variable {{{{{name}}}}} must be `context.<path>` or `inputs.<path>`"
            )
        found.append(name)
    leftover = _PLACEHOLDER.sub("", template)
    if "{{" in leftover or "}}" in leftover:
        raise TemplateError("template has an unbalanced `{{` or `}}`")
    return found


def render(template: str, scope: Mapping[str, Any]) -> str:
    """Substitute every `{{variable}}` from `scope` (`{"context": …, "inputs": …}`).

    Strings are inserted as they are; other values as compact JSON.
    """
    variables(template)

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        value = lookup(scope, tuple(name.split(".")))
        if value is MISSING:
            raise TemplateError(f"template variable `{name}` has no value")
        return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))

    return _PLACEHOLDER.sub(substitute, template)
