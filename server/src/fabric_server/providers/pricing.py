"""Model prices in USD per million tokens, and the cost of an execution.

The built-in table holds list prices of well-known models as published by their vendors at
the time of writing; operators correct or extend it with `FABRIC_MODEL_PRICES`. A model that
is in neither (a local Ollama model, say) costs nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

from fabric_server.settings import ModelPrice

BUILT_IN_PRICES: dict[str, tuple[float, float]] = {
    # OpenAI
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    "text-embedding-3-small": (0.02, 0.0),
    "text-embedding-3-large": (0.13, 0.0),
    "text-embedding-ada-002": (0.10, 0.0),
    # Anthropic
    "claude-opus-4-1": (15.00, 75.00),
    "claude-opus-4-0": (15.00, 75.00),
    "claude-sonnet-4-5": (3.00, 15.00),
    "claude-sonnet-4-0": (3.00, 15.00),
    "claude-haiku-4-5": (1.00, 5.00),
    "claude-3-7-sonnet": (3.00, 15.00),
    "claude-3-5-sonnet": (3.00, 15.00),
    "claude-3-5-haiku": (0.80, 4.00),
    "claude-3-haiku": (0.25, 1.25),
    # The offline test provider
    "echo-1": (0.0, 0.0),
}

FREE = ModelPrice(input=0.0, output=0.0)


class PriceTable:
    """Looks prices up by model name; dated variants (`gpt-4o-2024-08-06`,
    `claude-sonnet-4-0-20250514`, `…-latest`) take the price of their longest known prefix."""

    def __init__(self, overrides: Mapping[str, ModelPrice] | None = None) -> None:
        self._prices = {
            name: ModelPrice(input=inp, output=out) for name, (inp, out) in BUILT_IN_PRICES.items()
        }
        self._prices.update(overrides or {})
        self._by_length = sorted(self._prices, key=len, reverse=True)

    def price(self, model: str) -> ModelPrice | None:
        if model in self._prices:
            return self._prices[model]
        for name in self._by_length:
            if model.startswith(name + "-") or model.startswith(name + ":"):
                return self._prices[name]
        return None

    def cost(self, model: str, input_tokens: int, output_tokens: int) -> float:
        price = self.price(model) or FREE
        usd = (input_tokens * price.input + output_tokens * price.output) / 1_000_000
        return round(usd, 8)
