"""Native operations on the run context: pass-through, merge, and JSON Schema validation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jsonschema import exceptions as jsonschema_errors
from jsonschema import validators

from fabric_server.workflows.nodes.base import (
    Completed,
    NodeError,
    NodeRun,
    NodeSpec,
    Operation,
    Outcome,
)

_MAX_LISTED_VIOLATIONS = 20


class Noop(Operation):
    """Does nothing; its output is its inputs (a pass-through for joins and renames)."""

    name = "workflow.noop"
    instant = True
    max_retries = 0
    writes_output = False

    async def run(self, node: NodeRun) -> Outcome:
        return Completed(dict(node.inputs))


class MergeContext(Operation):
    """Config `values` (an object) is deep-merged into the context; the output is `values`."""

    name = "workflow.merge_context"
    instant = True
    max_retries = 0
    writes_output = False

    def check(self, node: NodeSpec) -> list[str]:
        if not isinstance(node.config.get("values"), dict):
            return ["config.values must be an object to merge into the context"]
        return []

    async def run(self, node: NodeRun) -> Outcome:
        values = dict(node.config["values"])
        return Completed(values, context_patch=values)


class ValidateContext(Operation):
    """Config `schema` (JSON Schema) validates the input `value` when bound, else the whole
    context. A violation fails the node with every problem listed."""

    name = "workflow.validate_context"
    instant = True
    max_retries = 0
    writes_output = False

    def check(self, node: NodeSpec) -> list[str]:
        schema = node.config.get("schema")
        if not isinstance(schema, dict):
            return ["config.schema must be a JSON Schema object"]
        try:
            validators.validator_for(schema).check_schema(schema)
        except jsonschema_errors.SchemaError as exc:
            return [f"config.schema is not a valid JSON Schema: {exc.message}"]
        return []

    async def run(self, node: NodeRun) -> Outcome:
        schema: Mapping[str, Any] = node.config["schema"]
        subject = node.inputs["value"] if "value" in node.inputs else dict(node.context)
        validator = validators.validator_for(schema)(schema)
        violations = sorted(validator.iter_errors(subject), key=lambda e: list(e.absolute_path))
        if violations:
            listed = [_describe(v) for v in violations[:_MAX_LISTED_VIOLATIONS]]
            more = len(violations) - len(listed)
            suffix = f"; and {more} more" if more > 0 else ""
            raise NodeError("context does not match the schema: " + "; ".join(listed) + suffix)
        return Completed({"valid": True})


def _describe(error: jsonschema_errors.ValidationError) -> str:
    path = ".".join(str(part) for part in error.absolute_path)
    return f"{path or '(root)'}: {error.message}"
