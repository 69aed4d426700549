"""Turning a Fabric text request into a chat conversation, the form both chat APIs take."""

from __future__ import annotations

from typing import Any

from fabric_server.providers.base import CHAT_ROLES, ProviderInputError, ProviderRequest

_ROLES = CHAT_ROLES
_PROMPT_KEYS = ("prompt", "text", "input", "query")


def chat_messages(request: ProviderRequest) -> list[dict[str, Any]]:
    """`input.messages` as given, else the prompt as one user message; `input.system` (or
    `params.system`) goes first as a system message."""
    data = request.input
    messages: list[dict[str, Any]] = []
    system = data.get("system", request.params.get("system"))
    if system is not None:
        if not isinstance(system, str):
            raise ProviderInputError("input.system must be a string")
        messages.append({"role": "system", "content": system})
    given = data.get("messages")
    if given is not None:
        if not isinstance(given, list) or not given:
            raise ProviderInputError("input.messages must be a non-empty list")
        for index, message in enumerate(given):
            messages.append(_checked(message, index))
        return messages
    for key in _PROMPT_KEYS:
        value = data.get(key)
        if isinstance(value, str) and value:
            messages.append({"role": "user", "content": value})
            return messages
    raise ProviderInputError("a text request needs input.prompt (or input.messages)")


def _checked(message: Any, index: int) -> dict[str, Any]:
    if not isinstance(message, dict):
        raise ProviderInputError(f"input.messages[{index}] must be an object")
    role, content = message.get("role"), message.get("content")
    if role not in _ROLES:
        raise ProviderInputError(f"input.messages[{index}].role must be one of {_ROLES}")
    if not isinstance(content, str | list):
        raise ProviderInputError(f"input.messages[{index}].content must be a string or a list")
    return {"role": role, "content": content}


def allowed_params(params: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """The generation parameters an API understands; Fabric's own knobs stay behind."""
    return {name: params[name] for name in names if params.get(name) is not None}


def usage_of(reply: dict[str, Any]) -> dict[str, Any]:
    """The `usage` object of an API reply ({} when a compatible server leaves it out)."""
    usage = reply.get("usage")
    return usage if isinstance(usage, dict) else {}
