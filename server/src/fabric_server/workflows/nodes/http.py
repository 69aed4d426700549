"""`http.request`: outbound HTTP with a guard against server-side request forgery.

Unless private targets are allowed (`FABRIC_HTTP_ALLOW_PRIVATE`, on by default in dev mode),
the host is resolved first and the request refused when any address is private, loopback,
link-local, multicast, reserved or unspecified. The connection then goes to the address that
was checked (Host header and TLS SNI keep the name), so a second DNS answer cannot slip past
the check. Redirects are followed by hand, and every hop is checked the same way.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from fabric_server.net.guard import is_public
from fabric_server.net.http import trace_headers
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

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
MAX_REDIRECTS = 5
_RETRYABLE_STATUS = frozenset({408, 425, 429})


class TransientHttpError(TransientNodeError):
    """A failure worth retrying: connection trouble, a timeout, a 5xx/429 answer."""


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: dict[str, str]
    content: bytes
    url: str
    encoding: str | None


class HttpRequest(Operation):
    """Config: `url`, `method` (GET), `headers`, `json` or `body`, `raise_for_status` (true),
    `follow_redirects` (true); `url`, header values, `body` and every string in `json` are
    templates. Inputs `url`, `headers`, `json`, `body` override the config (as data, not
    templates). Output: `status`, `headers`, `body`, `json`, `url`."""

    name = "http.request"
    templated = ("url", "headers", "body", "json")

    def __init__(self, *, allow_private: bool, max_response_bytes: int) -> None:
        self.allow_private = allow_private
        self.max_response_bytes = max_response_bytes

    def check(self, node: NodeSpec) -> list[str]:
        config = node.config
        problems = check_types(
            config,
            {
                "url": str,
                "method": str,
                "headers": dict,
                "body": str,
                "raise_for_status": bool,
                "follow_redirects": bool,
            },
        )
        method = config.get("method")
        if isinstance(method, str) and method.upper() not in METHODS:
            problems.append(f"config.method must be one of {', '.join(METHODS)}")
        if not config.get("url") and "url" not in node.input_names:
            problems.append("http.request needs config.url or a `url` input")
        headers = config.get("headers")
        if isinstance(headers, dict) and not all(isinstance(v, str) for v in headers.values()):
            problems.append("config.headers values must be strings")
        if "json" in config and "body" in config:
            problems.append("give config.json or config.body, not both")
        return problems

    async def run(self, node: NodeRun) -> Outcome:
        config, inputs = node.config, node.inputs
        if "url" in inputs:
            url = inputs["url"]
        elif config.get("url"):
            url = node.render_config("url")
        else:
            raise NodeError("http.request has no URL: its `url` input is not set")
        if not isinstance(url, str):
            raise NodeError("the `url` input must be a string")
        method = str(config.get("method") or "GET").upper()
        headers = dict(node.render_config("headers")) if config.get("headers") else {}
        if isinstance(inputs.get("headers"), dict):
            headers.update({str(k): str(v) for k, v in inputs["headers"].items()})
        content = _content(config, inputs, node, headers)
        answer = await self._exchange(
            method, url, headers, content, node.timeout_seconds, config.get("follow_redirects")
        )
        if config.get("raise_for_status", True) and answer.status >= 400:
            message = f"{method} {answer.url} answered {answer.status}"
            if answer.status >= 500 or answer.status in _RETRYABLE_STATUS:
                raise TransientHttpError(message)
            raise NodeError(message)
        return Completed(_output(answer))

    async def _exchange(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        content: bytes | None,
        timeout: float,
        follow_redirects: bool | None,
    ) -> _Answer:
        async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
            for _ in range(MAX_REDIRECTS + 1):
                target = _parse_url(url)
                pinned, extensions, host_header = await self._pin(target)
                request = client.build_request(
                    method,
                    pinned,
                    headers={**trace_headers(), **_without_host(headers), "Host": host_header},
                    content=content,
                    extensions=extensions,
                )
                try:
                    response = await client.send(request, stream=True)
                except httpx.HTTPError as exc:
                    raise TransientHttpError(f"{method} {target} failed: {exc!r}") from exc
                try:
                    if response.is_redirect and follow_redirects is not False:
                        url = str(target.join(response.headers["location"]))
                        if response.status_code == 303 or (
                            response.status_code in (301, 302) and method == "POST"
                        ):
                            method, content = "GET", None
                        continue
                    body = await self._read(response)
                    return _Answer(
                        response.status_code,
                        dict(response.headers),
                        body,
                        str(target),
                        response.charset_encoding,
                    )
                finally:
                    await response.aclose()
        raise NodeError(f"{method} {url}: more than {MAX_REDIRECTS} redirects")

    async def _pin(self, url: httpx.URL) -> tuple[httpx.URL, dict[str, Any], str]:
        """The URL to connect to (the checked address), request extensions, Host header."""
        host_header = url.netloc.decode("ascii")
        if self.allow_private:
            return url, {}, host_header
        addresses = await resolve(url.host, url.port or (443 if url.scheme == "https" else 80))
        for address in addresses:
            if is_forbidden_address(address):
                raise NodeError(
                    f"http.request refused {url.host}: it resolves to {address}, a private, "
                    "loopback or link-local address (set FABRIC_HTTP_ALLOW_PRIVATE=true to allow)"
                )
        extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
        return url.copy_with(host=addresses[0]), extensions, host_header

    async def _read(self, response: httpx.Response) -> bytes:
        limit = self.max_response_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise NodeError(f"the response is larger than the {limit}-byte limit")
        chunks, size = [], 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                raise NodeError(f"the response is larger than the {limit}-byte limit")
            chunks.append(chunk)
        return b"".join(chunks)


async def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (an IP literal resolves to itself)."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise TransientHttpError(f"cannot resolve {host}: {exc}") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise TransientHttpError(f"cannot resolve {host}")
    return addresses


def is_forbidden_address(address: str) -> bool:
    """Not a public address (the shared rule of `fabric_server.net.guard`: private,
    loopback, link-local, multicast, reserved, unspecified, and IPv4 wrapped in IPv6)."""
    return not is_public(ipaddress.ip_address(address.split("%", 1)[0]))


def _without_host(headers: Mapping[str, str]) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name.lower() != "host"}


def _parse_url(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise NodeError(f"invalid URL {url!r}: {exc}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise NodeError(f"http.request needs an http(s) URL with a host, got {url!r}")
    return parsed


def _content(
    config: Mapping[str, Any], inputs: Mapping[str, Any], node: NodeRun, headers: dict[str, str]
) -> bytes | None:
    """The request body: JSON (`json`) or raw text (`body`); inputs win over config.

    In config `json`, a string that is one placeholder alone keeps the value's type."""
    if "json" in inputs or "json" in config:
        if "json" in inputs:
            payload = inputs["json"]
        else:
            payload = node.render_config("json", keep_types=True)
        if not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = "application/json"
        return json.dumps(payload).encode()
    if "body" in inputs:
        body = inputs["body"]
        return (body if isinstance(body, str) else json.dumps(body)).encode()
    if isinstance(config.get("body"), str):
        return str(node.render_config("body")).encode()
    return None


def _output(answer: _Answer) -> dict[str, Any]:
    try:
        text = answer.content.decode(answer.encoding or "utf-8", errors="replace")
    except LookupError:  # an unknown charset name
        text = answer.content.decode("utf-8", errors="replace")
    parsed: Any = None
    if "json" in answer.headers.get("content-type", ""):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
    return {
        "status": answer.status,
        "headers": answer.headers,
        "body": text,
        "json": parsed,
        "url": answer.url,
    }
