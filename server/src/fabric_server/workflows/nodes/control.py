"""Operations that hold a run: a durable delay, and waiting for human input."""

from __future__ import annotations

from typing import Any

from fabric_server.workflows.node_state import Sleeping
from fabric_server.workflows.nodes.base import (
    Completed,
    NodeError,
    NodeRun,
    NodeSpec,
    Operation,
    Outcome,
    Sleep,
    WaitForInput,
    check_types,
)

MAX_DELAY_SECONDS = 30 * 24 * 3600
MAX_APPROVAL_TIMEOUT_SECONDS = 365 * 24 * 3600
DECISIONS = {"approve": True, "reject": False}
ON_TIMEOUT = ("fail", *DECISIONS)
APPROVAL_CONFIG: dict[str, type | tuple[type, ...]] = {
    "prompt": str,
    "timeout_seconds": (int, float),
    "on_timeout": str,
    "default_data": dict,
}


class Delay(Operation):
    """Config `seconds` (or input `seconds`): wake after that long. The wake-up is a queued
    work item due in the future, so it survives restarts and holds no worker meanwhile."""

    name = "workflow.delay"
    instant = True
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

    def wake(self, node: NodeRun, state: Sleeping) -> Outcome:
        return Completed({"waited_seconds": state.seconds})


class Approval(Operation):
    """Waits (node `waiting`, run `waiting`) until `resume_node` hands it data, which becomes
    its output. Config: optional `prompt` shown to whoever resumes it; optional
    `timeout_seconds`, after which `on_timeout` decides: `fail` (the default) fails the node,
    `approve` / `reject` complete it with `default_data` plus `approved` and `timed_out`."""

    name = "workflow.approval"
    instant = True
    aliases = ("workflow.wait_for_input",)
    max_retries = 0
    templated = ("prompt",)

    def check(self, node: NodeSpec) -> list[str]:
        config = node.config
        problems = check_types(config, APPROVAL_CONFIG)
        timeout = _number(config.get("timeout_seconds"))
        if timeout is not None and not 0 < timeout <= MAX_APPROVAL_TIMEOUT_SECONDS:
            problems.append(
                f"config.timeout_seconds must be above 0, at most {MAX_APPROVAL_TIMEOUT_SECONDS}"
            )
        on_timeout = config.get("on_timeout")
        if isinstance(on_timeout, str) and on_timeout not in ON_TIMEOUT:
            problems.append(f"config.on_timeout must be one of {', '.join(ON_TIMEOUT)}")
        if on_timeout is not None and config.get("timeout_seconds") is None:
            problems.append("config.on_timeout needs config.timeout_seconds")
        if config.get("default_data") is not None and on_timeout not in DECISIONS:
            problems.append(
                "config.default_data applies only when config.on_timeout is approve or reject"
            )
        return problems

    async def run(self, node: NodeRun) -> Outcome:
        prompt = node.config.get("prompt")
        return WaitForInput(
            node.render_config("prompt") if isinstance(prompt, str) else None,
            _number(node.config.get("timeout_seconds")),
        )

    def timed_out(self, node: NodeRun) -> Completed:
        on_timeout = node.config.get("on_timeout") or "fail"
        if on_timeout not in DECISIONS:
            seconds = node.config.get("timeout_seconds")
            raise NodeError(f"approval_timed_out: no decision within {seconds:g} s")
        data = dict(node.config.get("default_data") or {})
        return Completed({**data, "approved": DECISIONS[on_timeout], "timed_out": True})


def _number(value: Any) -> float | None:
    """`value` as a float when it is a number (booleans are not), else None."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None
