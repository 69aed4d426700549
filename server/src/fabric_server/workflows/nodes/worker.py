"""Operations served by code workers: the user's own functions as workflow steps.

A node whose operation is not built in (`acme.resize_image`), or the explicit form
`{"type": "worker.task", "config": {"operation": "acme.resize_image"}}`, hands a task to a
code worker that registered that operation (`fabric_server.workers`). The node stays running
while the task waits for a worker and runs there; the worker's report finishes the attempt
through the node's usual retry policy.

Config fields the server reads (the rest reach the function as `config`, rendered):
`operation` (explicit form), `secrets` (names of the organization's secrets the task
receives), `schedule_to_start_timeout` (seconds a task may wait for a worker before the node
fails), and the usual `timeout`.
"""

from __future__ import annotations

import re
from typing import Any

from fabric_server.workflows.effects import TASK_KIND_PREFIX
from fabric_server.workflows.nodes.base import (
    Dispatch,
    NodeError,
    NodeRun,
    NodeSpec,
    Operation,
    Outcome,
)

EXPLICIT = "worker.task"
# Work item kinds of tasks are `worker:<operation>` (the kind column holds 64 characters).
MAX_OPERATION_LENGTH = 64 - len(TASK_KIND_PREFIX)
#: Namespaces of the built-in operations: a name there that is not built in is a mistake,
#: never a code worker's operation.
RESERVED_NAMESPACES = ("ai", "http", "text", "workflow", "worker", "context", "fabric")
#: A code worker's operation name (JSON Schema pattern too: the published document says it).
OPERATION_PATTERN = (
    r"^(?!(?:" + "|".join(RESERVED_NAMESPACES) + r")\.)[a-z][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)+$"
)
_NAME = re.compile(r"^[a-z][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)+$")
# The names organization secrets have (`secrets.service.NAME_PATTERN`).
_SECRET_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,127}$")
_SERVER_FIELDS = ("operation", "secrets", "schedule_to_start_timeout", "timeout")


def worker_operation_problem(name: str) -> str | None:
    """Why `name` cannot be a code worker's operation; None when it can."""
    if not _NAME.match(name):
        return (
            "an operation served by code workers is a dotted name of letters, digits, `_` and "
            "`-` that starts with a lowercase letter, like `acme.resize_image`"
        )
    if len(name) > MAX_OPERATION_LENGTH:
        return f"an operation served by code workers has at most {MAX_OPERATION_LENGTH} characters"
    if name.split(".", 1)[0] in RESERVED_NAMESPACES:
        return f"`{name.split('.', 1)[0]}.` is reserved for built-in operations"
    return None


def is_worker_operation(name: str) -> bool:
    return worker_operation_problem(name) is None


class WorkerTask(Operation):
    """Hands the node to a code worker. Instant: dispatching is one transaction."""

    name = EXPLICIT
    instant = True

    def __init__(self, default_schedule_to_start: float | None = None) -> None:
        self.default_schedule_to_start = default_schedule_to_start

    def check(self, node: NodeSpec) -> list[str]:
        problems = []
        if node.operation == EXPLICIT:
            wanted = node.config.get("operation")
            if not isinstance(wanted, str):
                problems.append("config.operation must name the code workers' operation")
            elif (problem := worker_operation_problem(wanted)) is not None:
                problems.append(f"config.operation: {problem}")
        secrets = node.config.get("secrets")
        if secrets is not None and (
            not isinstance(secrets, list)
            or not all(isinstance(s, str) and _SECRET_NAME.match(s) for s in secrets)
        ):
            problems.append("config.secrets must be a list of secret names")
        limit = node.config.get("schedule_to_start_timeout")
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int | float) or limit <= 0
        ):
            problems.append("config.schedule_to_start_timeout must be a positive number of seconds")
        return problems

    async def run(self, node: NodeRun) -> Outcome:
        operation = node.config.get("operation") if node.operation == EXPLICIT else node.operation
        if not isinstance(operation, str):
            raise NodeError("config.operation must name the code workers' operation")
        config: dict[str, Any] = {
            key: node.render_config(key, keep_types=True)
            for key in node.config
            if key not in _SERVER_FIELDS
        }
        limit = node.config.get("schedule_to_start_timeout", self.default_schedule_to_start)
        return Dispatch(
            operation=operation,
            inputs=dict(node.inputs),
            config=config,
            secret_names=tuple(node.config.get("secrets") or ()),
            schedule_to_start_seconds=float(limit) if limit is not None else None,
        )
