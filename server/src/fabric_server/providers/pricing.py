"""Model prices, and the cost of an execution.

Most models are priced in USD per million tokens in and out. Media models are not: images
cost a fixed amount each (by size and quality), speech is priced per million characters and
whisper per second of audio (`ModelPrice.unit`); adapters report those units in place of
tokens. The built-in table holds list prices of well-known models as published by their
vendors at the time of writing; operators correct or extend it with `FABRIC_MODEL_PRICES`. A
model that is in neither (a local Ollama model, say) costs nothing.
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
    # OpenAI speech-to-text billed by tokens (audio in, text out)
    "gpt-4o-transcribe": (6.00, 10.00),
    "gpt-4o-mini-transcribe": (3.00, 5.00),
    # The offline test provider
    "echo-1": (0.0, 0.0),
}

# USD per image by (size, quality), and the quality a request naming none gets. An image's
# price key is `model:size:quality` (see `image_price_key`); `model:size` and `model` alone
# hold the default quality and the default 1024x1024 size.
IMAGE_PRICES: dict[str, tuple[str, dict[tuple[str, str], float]]] = {
    "dall-e-3": (
        "standard",
        {
            ("1024x1024", "standard"): 0.040,
            ("1024x1792", "standard"): 0.080,
            ("1792x1024", "standard"): 0.080,
            ("1024x1024", "hd"): 0.080,
            ("1024x1792", "hd"): 0.120,
            ("1792x1024", "hd"): 0.120,
        },
    ),
    "dall-e-2": (
        "standard",
        {
            ("1024x1024", "standard"): 0.020,
            ("512x512", "standard"): 0.018,
            ("256x256", "standard"): 0.016,
        },
    ),
    # gpt-image models are billed by tokens; these are OpenAI's per-image equivalents, which
    # leave out the few prompt tokens. "auto" quality is priced as medium.
    "gpt-image-1": (
        "medium",
        {
            ("1024x1024", "low"): 0.011,
            ("1024x1024", "medium"): 0.042,
            ("1024x1024", "high"): 0.167,
            ("1024x1536", "low"): 0.016,
            ("1024x1536", "medium"): 0.063,
            ("1024x1536", "high"): 0.25,
            ("1536x1024", "low"): 0.016,
            ("1536x1024", "medium"): 0.063,
            ("1536x1024", "high"): 0.25,
        },
    ),
    "gpt-image-1-mini": (
        "medium",
        {
            ("1024x1024", "low"): 0.005,
            ("1024x1024", "medium"): 0.011,
            ("1024x1024", "high"): 0.036,
            ("1024x1536", "low"): 0.006,
            ("1024x1536", "medium"): 0.015,
            ("1024x1536", "high"): 0.052,
            ("1536x1024", "low"): 0.006,
            ("1536x1024", "medium"): 0.015,
            ("1536x1024", "high"): 0.052,
        },
    ),
}
DEFAULT_IMAGE_SIZE = "1024x1024"

AUDIO_PRICES: dict[str, ModelPrice] = {
    # Text to speech, USD per million characters of input.
    "tts-1": ModelPrice(input=15.00, unit="characters"),
    "tts-1-hd": ModelPrice(input=30.00, unit="characters"),
    # Billed by tokens (text in $0.60/M, audio out $12/M), which the speech endpoint does not
    # report; OpenAI estimates it at $0.015 a minute, about what tts-1 costs per character.
    "gpt-4o-mini-tts": ModelPrice(input=15.00, unit="characters"),
    # $0.006 a minute of audio, as USD per million seconds.
    "whisper-1": ModelPrice(input=100.00, unit="seconds"),
}

FREE = ModelPrice(input=0.0, output=0.0)


def image_price_key(model: str, size: str | None, quality: str | None) -> str:
    """The price table entry of one image: `dall-e-3:1792x1024:hd`."""
    return f"{model}:{size or DEFAULT_IMAGE_SIZE}:{quality or 'default'}"


def _built_in() -> dict[str, ModelPrice]:
    prices = {
        name: ModelPrice(input=inp, output=out) for name, (inp, out) in BUILT_IN_PRICES.items()
    }
    for model, (default_quality, table) in IMAGE_PRICES.items():
        for (size, quality), usd in table.items():
            prices[f"{model}:{size}:{quality}"] = ModelPrice(per_request=usd)
            if quality == default_quality:
                prices[f"{model}:{size}"] = ModelPrice(per_request=usd)
        prices[model] = ModelPrice(per_request=table[(DEFAULT_IMAGE_SIZE, default_quality)])
    prices.update(AUDIO_PRICES)
    return prices


class PriceTable:
    """Looks prices up by model name; dated variants (`gpt-4o-2024-08-06`,
    `claude-sonnet-4-0-20250514`, `…-latest`) take the price of their longest known prefix."""

    def __init__(self, overrides: Mapping[str, ModelPrice] | None = None) -> None:
        self._prices = _built_in()
        overrides = overrides or {}
        for name in overrides:
            # An operator's price for `dall-e-3` covers every size and quality of it, unless
            # they also price those (`dall-e-3:1792x1024:hd`).
            for variant in [key for key in self._prices if key.startswith(name + ":")]:
                del self._prices[variant]
        for name, price in overrides.items():
            known = self._prices.get(name)
            if known is not None and "unit" not in price.model_fields_set:
                # What a model is billed by does not change with its price.
                price = price.model_copy(update={"unit": known.unit})
            self._prices[name] = price
        self._by_length = sorted(self._prices, key=len, reverse=True)

    def price(self, model: str) -> ModelPrice | None:
        if model in self._prices:
            return self._prices[model]
        for name in self._by_length:
            if model.startswith(name + "-") or model.startswith(name + ":"):
                return self._prices[name]
        return None

    def cost(self, model: str, input_tokens: int, output_tokens: int) -> float:
        """USD for one call of `model` (or of a price key such as `dall-e-3:1024x1024:hd`)
        using these many input and output units."""
        price = self.price(model) or FREE
        usd = (input_tokens * price.input + output_tokens * price.output) / 1_000_000
        return round(usd + price.per_request, 8)
