"""`ai.generate`: one provider call, through the provider-call use case, with a usage record.

A paid call in an organization whose monthly budget is spent fails the node with
`budget_exceeded` (not retried) before anyone is called."""

from __future__ import annotations

from typing import Any

from fabric_server.budgets.service import BudgetExceeded
from fabric_server.provider_calls.use_case import ProviderCalls
from fabric_server.providers.base import MODALITIES, ProviderInputError, ProviderRequest
from fabric_server.providers.errors import ProviderError
from fabric_server.workflows.nodes.base import (
    Completed,
    NodeError,
    NodeRun,
    NodeSpec,
    Operation,
    Outcome,
    TransientNodeError,
    check_types,
)

TIERS = ("basic", "premium")


class AIGenerate(Operation):
    """Config: `modality` (default text), `model`, `tier`, `prompt_template`, `params`.
    Input: `prompt` (used when there is no template). Output: `content`, `finish_reason`,
    `provider_id`, `model`, `usage`, plus the provider's own fields for other modalities."""

    name = "ai.generate"
    aliases = ("ai_invoke",)
    templated = ("prompt_template",)

    def __init__(self, calls: ProviderCalls) -> None:
        self.calls = calls
        self.providers = calls.providers

    def check(self, node: NodeSpec) -> list[str]:
        config = node.config
        problems = check_types(
            config,
            {"modality": str, "model": str, "tier": str, "prompt_template": str, "params": dict},
        )
        modality = config.get("modality") or "text"
        if problems:
            return problems
        if modality not in MODALITIES:
            return [f"config.modality must be one of {', '.join(MODALITIES)}"]
        if config.get("tier") is not None and config["tier"] not in TIERS:
            problems.append(f"config.tier must be one of {', '.join(TIERS)}")
        if not config.get("prompt_template") and "prompt" not in node.input_names:
            problems.append("ai.generate needs config.prompt_template or a `prompt` input")
        try:
            self.providers.route(
                ProviderRequest(modality=modality, input={}, model=config.get("model")),
                config.get("tier"),
            )
        except ProviderInputError as exc:
            problems.append(str(exc))
        return problems

    async def run(self, node: NodeRun) -> Outcome:
        config = node.config
        templated = bool(config.get("prompt_template"))
        prompt = node.render_config("prompt_template") if templated else node.inputs.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise NodeError("ai.generate has no prompt: its `prompt` input is empty or unset")
        request = ProviderRequest(
            modality=config.get("modality") or "text",
            input={"prompt": prompt},
            model=config.get("model"),
            params=dict(config.get("params") or {}),
        )
        tier = config.get("tier")
        try:
            execution = await self.calls.execute(node.organization_id, request, tier)
        except BudgetExceeded as exc:
            raise NodeError(f"{exc.code}: {exc.message}") from exc
        except ProviderInputError as exc:
            raise NodeError(str(exc)) from exc
        except ProviderError as exc:
            if exc.transient:
                raise TransientNodeError(exc.message) from exc
            raise NodeError(exc.message) from exc
        result = execution.result

        usage = {
            "input_tokens": result.input_tokens,
            "output_tokens": result.output_tokens,
            "estimated_cost_usd": result.cost_usd,
        }
        extra = {k: v for k, v in result.output.items() if k not in ("provider", "text")}
        output: dict[str, Any] = {
            **extra,
            "content": result.output.get("content", result.output.get("text")),
            "finish_reason": result.output.get("finish_reason", "stop"),
            "provider_id": result.provider_id,
            "model": result.model,
            "usage": usage,
        }
        record = self.calls.usage(
            execution,
            organization_id=node.organization_id,
            principal_id=node.created_by,
            run_id=node.run_id,
            node_key=node.node_key,
        )
        return Completed(output, usage=(record,))
