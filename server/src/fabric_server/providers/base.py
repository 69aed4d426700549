"""The provider interface: what every model provider adapter offers."""

from __future__ import annotations

import functools
import math
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, cast, runtime_checkable

MODALITIES = ("text", "image", "audio", "video", "embedding")
TIERS = ("basic", "premium")
# Only text comes out piece by piece; other modalities arrive whole.
STREAMING_MODALITIES = ("text",)


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


@dataclass(frozen=True)
class TextDelta:
    """The next piece of a streamed text answer."""

    text: str


# What `Provider.stream` yields: deltas as they arrive, then exactly one result.
StreamItem = TextDelta | ProviderResult


class ProviderInputError(ValueError):
    """The request cannot be served as given (missing prompt, unknown model…)."""


@dataclass(frozen=True)
class Credentials:
    """The secrets one organization can use with providers, by name (`OPENAI_API_KEY`…).

    `from_organization` names the values that came from the organization's own secrets
    rather than the server's settings: an adapter must never send a server-wide key to an
    endpoint an organization chose. Values never appear in `repr`.
    """

    values: Mapping[str, str] = field(default_factory=dict, repr=False)
    from_organization: frozenset[str] = frozenset()
    # Endpoint secrets (`OPENAI_BASE_URL`…) the organization's key may not be sent to: set
    # by someone other than the key's author who is not an owner (see `CredentialResolver`).
    unapproved_endpoints: frozenset[str] = frozenset()

    def get(self, name: str) -> str | None:
        return self.values.get(name) or None

    def is_organization_value(self, name: str) -> bool:
        return name in self.from_organization and bool(self.values.get(name))

    def endpoint_unapproved(self, endpoint_name: str, key_name: str) -> str | None:
        """Why the organization's `key_name` may not go to its `endpoint_name`, or None."""
        if endpoint_name not in self.unapproved_endpoints:
            return None
        return (
            f"the organization's {key_name} was set by someone else than its {endpoint_name}, "
            f"and an owner must set {endpoint_name} (again) before the key is sent there"
        )


NO_CREDENTIALS = Credentials()


class Provider(Protocol):
    """A provider adapter: what it offers, and how to call it.

    Adapters report tokens, not money: the registry prices every result from one table.
    """

    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def tier(self) -> str: ...

    @property
    def modalities(self) -> tuple[str, ...]: ...

    @property
    def supports_streaming(self) -> bool:
        """Whether `stream` delivers text piece by piece (`STREAMING_MODALITIES`)."""
        ...

    @property
    def credential_names(self) -> tuple[str, ...]:
        """The secrets this adapter reads (looked up per organization)."""
        ...

    def models(self) -> tuple[str, ...]: ...

    def serves(self, model: str, modality: str) -> bool:
        """Whether a request pinned to `model` for `modality` belongs to this provider."""
        ...

    def default_model(self, modality: str) -> str: ...

    def unavailable_reason(self, credentials: Credentials) -> str | None:
        """None when the adapter can be called with these credentials, else what to set."""
        ...

    def endpoint(self, credentials: Credentials) -> str:
        """Where calls go (health is tracked per provider and endpoint)."""
        ...

    def estimate_tokens(self, request: ProviderRequest) -> tuple[int, int]:
        """Likely (input, output) tokens of a request, before running it."""
        ...

    async def execute(
        self, request: ProviderRequest, credentials: Credentials = NO_CREDENTIALS
    ) -> ProviderResult: ...

    def stream(
        self, request: ProviderRequest, credentials: Credentials = NO_CREDENTIALS
    ) -> AsyncIterator[StreamItem]:
        """Text deltas as the model produces them, then the `ProviderResult` (last item).

        Only called for a streaming modality of a provider that `supports_streaming`.
        """
        ...

    async def check_health(self, credentials: Credentials) -> None:
        """A cheap call proving the endpoint answers; raises a `ProviderError` if not."""
        ...


TEXT_KEYS = ("prompt", "text", "input", "query")
URL_KEYS = ("url", "image_url", "audio_url", "video_url")
_TEXT_KEYS, _URL_KEYS = TEXT_KEYS, URL_KEYS
CHAT_ROLES = ("system", "user", "assistant")
# What `validate_input` and the chat conversion require, as the API documents it.
INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Provider input: a non-empty `prompt` (or `text`, `input`, `query`, a media "
    "`url`/`image_url`/`audio_url`/`video_url`), or a non-empty `messages` conversation. "
    "What else a provider reads depends on the modality (docs/providers.md).",
    "properties": {
        "messages": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["role", "content"],
                "properties": {
                    "role": {"enum": list(CHAT_ROLES)},
                    "content": {"type": ["string", "array"]},
                },
            },
        },
        "system": {"type": ["string", "null"]},
    },
    "anyOf": [
        *(
            {"required": [key], "properties": {key: {"type": "string", "minLength": 1}}}
            for key in TEXT_KEYS + URL_KEYS
        ),
        {"required": ["messages"], "properties": {"messages": {"minItems": 1}}},
    ],
    "examples": [{"prompt": "Write a haiku about the sea"}],
}


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


DEFAULT_OUTPUT_TOKENS = 256


def input_text(data: Mapping[str, Any]) -> str:
    """The text a request works on: the prompt-like field, else the messages joined."""
    for key in _TEXT_KEYS + _URL_KEYS:
        value = data.get(key)
        if isinstance(value, str):
            return value
    messages = data.get("messages")
    if isinstance(messages, list):
        return "\n".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))
    return ""


def approximate_tokens(text: str) -> int:
    """About four characters per token: the usual rule of thumb for English text."""
    return max(1, math.ceil(len(text) / 4)) if text else 0


def estimate_remote_tokens(request: ProviderRequest) -> tuple[int, int]:
    """Token estimate for a remote model: input from its text, output from `max_tokens`."""
    tokens_in = approximate_tokens(input_text(request.input))
    if request.modality == "embedding":
        return tokens_in, 0
    limit = request.params.get("max_tokens") or request.params.get("max_completion_tokens")
    tokens_out = limit if isinstance(limit, int) and limit > 0 else DEFAULT_OUTPUT_TOKENS
    return tokens_in, tokens_out


@runtime_checkable
class ChoosesByRequest(Protocol):
    """An adapter whose default model and price depend on the request, not only on its
    modality and model (audio is speech or a transcription depending on the input; an
    image's price depends on its size and quality). Adapters without it need neither."""

    def default_model_for(self, request: ProviderRequest) -> str: ...

    def price_key(self, request: ProviderRequest) -> str:
        """The price table entry that bills `request` (whose `model` is set)."""
        ...


@functools.cache
def _chooses_by_request(kind: type) -> bool:
    # A runtime protocol check inspects every member on each call; adapters are few classes.
    return issubclass(kind, ChoosesByRequest)


def model_for(provider: Provider, request: ProviderRequest) -> str:
    """The model `provider` runs `request` on when the request names none."""
    if _chooses_by_request(type(provider)):
        return cast(ChoosesByRequest, provider).default_model_for(request)
    return provider.default_model(request.modality)


def price_key_for(provider: Provider, request: ProviderRequest) -> str:
    """What `request` is priced as: its model, or a finer entry the adapter names."""
    if _chooses_by_request(type(provider)):
        return cast(ChoosesByRequest, provider).price_key(request)
    return request.model or provider.default_model(request.modality)
