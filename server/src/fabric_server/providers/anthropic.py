"""The `anthropic` provider: Claude through the Anthropic Messages API.

`POST {base}/v1/messages` with `x-api-key: <ANTHROPIC_API_KEY>` and `anthropic-version`. The
base URL is the organization's `ANTHROPIC_BASE_URL` secret (a gateway or proxy speaking the
same API; it must be public unless the operator allows private ones, and it only ever gets the
organization's own key), else `FABRIC_ANTHROPIC_BASE_URL`.
System text travels in the top-level `system` field, not as a message, and `max_tokens` is
required (from `params.max_tokens`, else `FABRIC_ANTHROPIC_MAX_TOKENS`). Streaming asks
for `"stream": true` and reads the `content_block_delta` events of the answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fabric_server.providers.base import (
    NO_CREDENTIALS,
    Credentials,
    ProviderInputError,
    ProviderRequest,
    ProviderResult,
    StreamItem,
    TextDelta,
    approximate_tokens,
    input_text,
)
from fabric_server.providers.chat import allowed_params, chat_messages, usage_of
from fabric_server.providers.errors import ProviderNotConfigured, UpstreamError
from fabric_server.providers.http import Upstream, UpstreamClient
from fabric_server.providers.sse_reader import frames
from fabric_server.providers.urlguard import check_public_url, check_url_syntax

DEFAULT_BASE_URL = "https://api.anthropic.com"
KEY = "ANTHROPIC_API_KEY"
BASE_URL = "ANTHROPIC_BASE_URL"
_PARAMS = ("temperature", "top_p", "top_k", "stop_sequences", "metadata")


class AnthropicProvider:
    id = "anthropic"
    name = "Anthropic"
    tier = "premium"
    modalities = ("text",)
    supports_streaming = True
    credential_names = (KEY, BASE_URL)

    def __init__(
        self,
        http: UpstreamClient,
        *,
        base_url: str = DEFAULT_BASE_URL,
        version: str = "2023-06-01",
        models: tuple[str, ...] = ("claude-haiku-4-5",),
        default_model: str = "claude-haiku-4-5",
        max_tokens: int = 1024,
        allow_private_urls: bool = False,
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.version = version
        self._models = tuple(dict.fromkeys((default_model, *models)))
        self._default = default_model
        self.max_tokens = max_tokens
        self.allow_private_urls = allow_private_urls
        self._upstream = Upstream(self.id, "Anthropic", KEY)

    def models(self) -> tuple[str, ...]:
        return self._models

    def serves(self, model: str, modality: str) -> bool:
        return modality == "text" and (model in self._models or model.startswith("claude-"))

    def default_model(self, modality: str) -> str:
        return self._default

    def unavailable_reason(self, credentials: Credentials) -> str | None:
        if credentials.is_organization_value(BASE_URL):
            if credentials.is_organization_value(KEY):
                return credentials.endpoint_unapproved(BASE_URL, KEY)
            return f"set the {KEY} secret (the organization's {BASE_URL} needs its own key)"
        if credentials.get(KEY):
            return None
        return f"set the {KEY} secret (or FABRIC_ANTHROPIC_API_KEY on the server)"

    def endpoint(self, credentials: Credentials) -> str:
        if credentials.is_organization_value(BASE_URL):
            return (credentials.get(BASE_URL) or self.base_url).rstrip("/")
        return self.base_url

    def estimate_tokens(self, request: ProviderRequest) -> tuple[int, int]:
        tokens_in = approximate_tokens(input_text(request.input))
        return tokens_in, self._max_tokens(request)

    async def execute(
        self, request: ProviderRequest, credentials: Credentials = NO_CREDENTIALS
    ) -> ProviderResult:
        if request.modality != "text":
            raise ProviderInputError(f"the anthropic provider does not do {request.modality}")
        base, headers = await self._prepare(credentials)
        model = request.model or self._default
        body = self._body(request, model)
        reply = await self.http.post_json(self._upstream, f"{base}/v1/messages", headers, body)
        return self._result(model, reply, request)

    async def stream(
        self, request: ProviderRequest, credentials: Credentials = NO_CREDENTIALS
    ) -> AsyncIterator[StreamItem]:
        if request.modality != "text":
            raise ProviderInputError(f"the anthropic provider does not stream {request.modality}")
        base, headers = await self._prepare(credentials)
        headers["accept"] = "text/event-stream"
        model = request.model or self._default
        body = {**self._body(request, model), "stream": True}
        parts: list[str] = []
        usage: dict[str, Any] = {}
        stop_reason = None
        answered_model = model
        url = f"{base}/v1/messages"
        async with self.http.stream_post(self._upstream, url, headers, body) as response:
            async for frame in frames(response, self._upstream):
                event = frame.json(self._upstream)
                kind = event.get("type", frame.event)
                if kind == "error":
                    raise self._stream_error(event)
                if kind == "message_start" and isinstance(event.get("message"), dict):
                    answered_model = event["message"].get("model") or answered_model
                    usage.update(usage_of(event["message"]))
                elif kind == "content_block_delta":
                    delta = event.get("delta")
                    text = delta.get("text") if isinstance(delta, dict) else None
                    if isinstance(text, str) and text:
                        parts.append(text)
                        yield TextDelta(text)
                elif kind == "message_delta":
                    usage.update(usage_of(event))
                    delta = event.get("delta")
                    if isinstance(delta, dict) and delta.get("stop_reason"):
                        stop_reason = delta["stop_reason"]
                elif kind == "message_stop":
                    break
        reply = {
            "content": [{"type": "text", "text": "".join(parts)}],
            "stop_reason": stop_reason,
            "model": answered_model,
            "usage": usage,
        }
        yield self._result(model, reply, request)

    async def check_health(self, credentials: Credentials) -> None:
        base, headers = await self._prepare(credentials)
        await self.http.get(self._upstream, f"{base}/v1/models", headers)

    async def _prepare(self, credentials: Credentials) -> tuple[str, dict[str, str]]:
        """Where to call and with which headers; refuses what `unavailable_reason` names."""
        reason = self.unavailable_reason(credentials)
        key = credentials.get(KEY)
        if reason is not None or not key:
            raise ProviderNotConfigured(
                f"Anthropic is not configured: {reason}.", provider_id=self.id
            )
        base = self.endpoint(credentials)
        if credentials.is_organization_value(BASE_URL):
            base = check_url_syntax(base, BASE_URL)
            if not self.allow_private_urls:
                check_public_url(base, BASE_URL)
        return base, {
            "x-api-key": key,
            "anthropic-version": self.version,
            "content-type": "application/json",
            "accept": "application/json",
        }

    def _body(self, request: ProviderRequest, model: str) -> dict[str, Any]:
        system, messages = _split_system(chat_messages(request))
        body: dict[str, Any] = {
            "model": model,
            "max_tokens": self._max_tokens(request),
            "messages": messages,
        }
        if system:
            body["system"] = system
        stop = request.params.get("stop")
        if stop is not None and "stop_sequences" not in request.params:
            body["stop_sequences"] = [stop] if isinstance(stop, str) else stop
        body.update(allowed_params(request.params, _PARAMS))
        return body

    def _stream_error(self, event: dict[str, Any]) -> UpstreamError:
        error = event.get("error")
        message = error.get("message") if isinstance(error, dict) else None
        return UpstreamError(
            f"The Anthropic API failed while streaming: {message or 'unknown error'}",
            provider_id=self.id,
        )

    def _max_tokens(self, request: ProviderRequest) -> int:
        limit = request.params.get("max_tokens")
        return limit if isinstance(limit, int) and limit > 0 else self.max_tokens

    def _result(
        self, model: str, reply: dict[str, Any], request: ProviderRequest
    ) -> ProviderResult:
        blocks = reply.get("content")
        if not isinstance(blocks, list):
            raise UpstreamError(
                "The Anthropic API answered in an unexpected shape.", provider_id=self.id
            )
        text = "".join(
            block["text"]
            for block in blocks
            if isinstance(block, dict)
            and block.get("type") == "text"
            and isinstance(block.get("text"), str)
        )
        usage = usage_of(reply)
        tokens_in = usage.get("input_tokens")
        tokens_out = usage.get("output_tokens")
        return ProviderResult(
            provider_id=self.id,
            model=model,
            output={
                "text": text,
                "content": text,
                "finish_reason": reply.get("stop_reason"),
                "model": reply.get("model", model),
                "provider": self.id,
            },
            input_tokens=tokens_in
            if isinstance(tokens_in, int)
            else approximate_tokens(input_text(request.input)),
            output_tokens=tokens_out if isinstance(tokens_out, int) else approximate_tokens(text),
        )


def _split_system(
    messages: list[dict[str, Any]],
) -> tuple[str | None, list[dict[str, Any]]]:
    system_parts: list[str] = []
    rest: list[dict[str, Any]] = []
    for message in messages:
        if message["role"] == "system":
            if not isinstance(message["content"], str):
                raise ProviderInputError("a system message must be a string for anthropic")
            system_parts.append(message["content"])
        else:
            rest.append(message)
    if not rest:
        raise ProviderInputError("a text request needs at least one user message")
    return ("\n\n".join(system_parts) or None), rest
