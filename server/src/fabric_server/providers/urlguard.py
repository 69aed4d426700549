"""Checks on endpoints chosen by an organization (its `OPENAI_BASE_URL` secret).

The server calls such an endpoint from inside its own network, so unless the operator allows
it, the address must be public: not loopback, private, link-local (cloud metadata), or
otherwise reserved. Endpoints set by the operator in settings are trusted and not checked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from fabric_server.providers.errors import ProviderNotConfigured


def check_url_syntax(url: str, secret_name: str) -> str:
    """The URL without a trailing slash, if it is an absolute http(s) URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProviderNotConfigured(
            f"The {secret_name} secret must be an absolute http(s) URL such as "
            "https://api.example.com/v1."
        )
    if parts.username or parts.password:
        raise ProviderNotConfigured(f"The {secret_name} secret must not embed credentials.")
    return url.rstrip("/")


async def check_public_url(url: str, secret_name: str) -> None:
    """Raise `ProviderNotConfigured` unless every address of the URL's host is public."""
    host = urlsplit(url).hostname or ""
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise ProviderNotConfigured(
                f"The host of the {secret_name} secret ({host}) does not resolve."
            ) from exc
        # A scoped IPv6 address (fe80::1%eth0) carries its zone after a percent sign.
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not addresses or any(not address.is_global for address in addresses):
        raise ProviderNotConfigured(
            f"The {secret_name} secret points at a private or reserved address, which this "
            "server refuses (the operator can allow it with "
            "FABRIC_ALLOW_PRIVATE_PROVIDER_URLS)."
        )
