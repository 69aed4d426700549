"""Reading a provider's Server-Sent Events answer (OpenAI and Anthropic both stream so).

Frames are decoded per the SSE rules that matter here: `event:` and `data:` fields (several
`data:` lines join with a newline), comments and unknown fields ignored, a blank line ends a
frame. A transport failure while reading becomes the same `ProviderError` a whole answer
would have produced: a read timeout `UpstreamTimeout`, anything else `UpstreamError`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from fabric_server.providers.errors import UpstreamError, UpstreamTimeout
from fabric_server.providers.http import Upstream


@dataclass(frozen=True)
class Frame:
    event: str
    data: str

    def json(self, upstream: Upstream) -> dict[str, Any]:
        """The frame's data as a JSON object, else an `UpstreamError`."""
        try:
            value = json.loads(self.data)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise UpstreamError(
                f"The {upstream.label} API streamed something other than a JSON object.",
                provider_id=upstream.provider_id,
            )
        return value


async def frames(response: httpx.Response, upstream: Upstream) -> AsyncIterator[Frame]:
    event = ""
    data: list[str] = []
    try:
        async for line in response.aiter_lines():
            if not line:
                if data:
                    yield Frame(event or "message", "\n".join(data))
                event, data = "", []
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
    except httpx.TimeoutException as exc:
        raise UpstreamTimeout(
            f"The {upstream.label} API stopped sending in the middle of its answer.",
            provider_id=upstream.provider_id,
        ) from exc
    except httpx.HTTPError as exc:
        raise UpstreamError(
            f"The {upstream.label} API connection broke while streaming ({type(exc).__name__}).",
            provider_id=upstream.provider_id,
        ) from exc
    if data:
        yield Frame(event or "message", "\n".join(data))
