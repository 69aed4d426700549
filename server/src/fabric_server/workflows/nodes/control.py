"""Operations that hold a run: a durable delay, and waiting for human input."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fabric_server.workflows.nodes.base import (
    Completed,
    NodeError,
    NodeRun,
    NodeSpec,
    Operation,
    Outcome,
    Sleep,
    WaitForInput,
    check_template,
    check_types,
)

MAX_DELAY_SECONDS = 30 * 24 * 3600


class Delay(Operation):
    """Config `seconds` (or input `seconds`): wake after that long. The wake-up is a queued
    work item due in the future, so it survives restarts and holds no worker meanwhile."""

    name = "workflow.delay"
    max_retries = 0
    writes_output = False

    def check(self, node: NodeSpec) -> list[str]:
        problems = check_types(node.config, {"seconds": (int, float)})
        seconds = node.config.get("seconds")
        if not problems and seconds is None and "seconds" not in node.input_names:
            problems.append("workflow.delay needs config.seconds or a `seconds` input")
        if isinstance(seconds, int | float) and not 0 <= seconds <= MAX_DELAY_SECONDS:
            problems.append(f"config.seconds must be between 0 and {MAX_DELAY_SECONDS}")
        return problems

    async def run(self, node: NodeRun) -> Outcome:
        seconds = node.inputs.get("seconds", node.config.get("seconds"))
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise NodeError("workflow.delay needs a number of `seconds`")
        if not 0 <= seconds <= MAX_DELAY_SECONDS:
            raise NodeError(f"workflow.delay seconds must be between 0 and {MAX_DELAY_SECONDS}")
        return Sleep(float(seconds))

    def wake(self, node: NodeRun, state: Mapping[str, Any]) -> Outcome:
        return Completed({"waited_seconds": state.get("sleep_seconds", 0.0)})


class Approval(Operation):
    """Waits (node `waiting`, run `waiting`) until `resume_node` hands it data, which becomes
    its output. Config: optional `prompt` shown to whoever resumes it."""

    name = "workflow.approval"
    aliases = ("workflow.wait_for_input",)
    max_retries = 0

    def check(self, node: NodeSpec) -> list[str]:
        return check_types(node.config, {"prompt": str}) + check_template(node.config, "prompt")

    async def run(self, node: NodeRun) -> Outcome:
        prompt = node.config.get("prompt")
        return WaitForInput(node.render(prompt) if isinstance(prompt, str) else None)
