"""The provider interface: what every model provider adapter offers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

MODALITIES = ("text", "image", "audio", "video", "embedding")


@dataclass(frozen=True)
class ProviderRequest:
    modality: str
    input: dict[str, Any]
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProviderResult:
    provider_id: str
    model: str
    output: dict[str, Any]
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


class ProviderInputError(ValueError):
    """The request cannot be served as given (missing prompt, unknown model…)."""


class Provider(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def tier(self) -> str: ...

    @property
    def modalities(self) -> tuple[str, ...]: ...

    def models(self) -> tuple[str, ...]: ...

    async def execute(self, request: ProviderRequest) -> ProviderResult: ...


_TEXT_KEYS = ("prompt", "text", "input", "query")
_URL_KEYS = ("url", "image_url", "audio_url", "video_url")


def validate_input(request: ProviderRequest) -> None:
    """Reject inputs no provider could serve: something to work on must be present."""
    data = request.input
    if any(isinstance(data.get(k), str) and data[k] for k in _TEXT_KEYS + _URL_KEYS):
        return
    messages = data.get("messages")
    if isinstance(messages, list) and messages:
        return
    raise ProviderInputError(
        "input needs a non-empty `prompt` (or `text`, `messages`, or a media `url`)"
    )
