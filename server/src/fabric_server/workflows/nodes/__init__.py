"""The workflow operations, and the registry that finds one by name or alias."""

from __future__ import annotations

from collections.abc import Iterable

from fabric_server.provider_calls.use_case import ProviderCalls
from fabric_server.settings import Settings
from fabric_server.workflows.nodes.ai import AIGenerate
from fabric_server.workflows.nodes.base import Operation
from fabric_server.workflows.nodes.children import FanIn, FanOut, Subworkflow
from fabric_server.workflows.nodes.context import MergeContext, Noop, ValidateContext
from fabric_server.workflows.nodes.control import Approval, Delay
from fabric_server.workflows.nodes.http import HttpRequest
from fabric_server.workflows.nodes.text import TextTransform
from fabric_server.workflows.nodes.worker import EXPLICIT, WorkerTask, is_worker_operation


class OperationRegistry:
    """Operations by canonical name. `ai_generate` finds `ai.generate`: the first `_` of a
    name may stand for its `.` (the underscore spellings clients send in `type`/`kind`).

    A name that is not built in but could be a code worker's operation (`acme.resize`) is
    one: it canonicalises to itself and runs as `worker.task` (see `nodes.worker`)."""

    def __init__(self, operations: Iterable[Operation]) -> None:
        self._operations = {op.name: op for op in operations}
        self._aliases = {alias: op.name for op in self._operations.values() for alias in op.aliases}

    def canonical(self, name: str) -> str | None:
        """The canonical name for `name` or one of its spellings; None if unknown."""
        for candidate in (name, name.replace("_", ".", 1)):
            if candidate in self._operations:
                return candidate
            if candidate in self._aliases:
                return self._aliases[candidate]
        if EXPLICIT in self._operations and is_worker_operation(name):
            return name
        return None

    def get(self, name: str) -> Operation:
        canonical = self.canonical(name)
        if canonical is None:
            raise KeyError(name)
        return self._operations.get(canonical) or self._operations[EXPLICIT]

    def names(self) -> list[str]:
        """The built-in operations' names."""
        return sorted(self._operations)

    def spellings(self) -> list[str]:
        """Every name `canonical` accepts: names, aliases, and their `_` spellings."""
        known = [*self._operations, *self._aliases]
        return sorted({*known, *(name.replace(".", "_", 1) for name in known)})


def build_operations(calls: ProviderCalls, settings: Settings) -> OperationRegistry:
    return OperationRegistry(
        [
            AIGenerate(calls),
            Noop(),
            MergeContext(),
            ValidateContext(),
            TextTransform(),
            HttpRequest(
                allow_private=settings.http_private_allowed,
                max_response_bytes=settings.http_max_response_bytes,
            ),
            Delay(),
            Approval(),
            Subworkflow(),
            FanOut(max_items=settings.workflow_max_fan_out),
            FanIn(),
            WorkerTask(default_schedule_to_start=settings.worker_schedule_to_start_seconds),
        ]
    )
