"""Checks on endpoints chosen by an organization (its `OPENAI_BASE_URL` / `ANTHROPIC_BASE_URL`
secret).

The server calls such an endpoint from inside its own network, so unless the operator allows
it, the address must be public: not loopback, private, link-local (cloud metadata), or
otherwise reserved — in any spelling (`[::127.0.0.1]`, NAT64 `[64:ff9b::7f00:1]`, 6to4
`[2002:7f00:1::]`, `127.1`…). Here the URL as written is checked (the shared
`net.guard.AddressGuard`); a host name is resolved and checked when connecting, on the
connection itself (`UpstreamClient` pins it). Endpoints set by the operator in settings are
trusted and not checked.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fabric_server.net.guard import AddressGuard, BlockedAddress
from fabric_server.providers.errors import ProviderNotConfigured

_PUBLIC_ONLY = AddressGuard(allow_private=False)


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


def check_public_url(url: str, secret_name: str) -> None:
    """Raise `ProviderNotConfigured` unless the URL, as written, names a public target."""
    try:
        _PUBLIC_ONLY.check_url(url)
    except BlockedAddress as exc:
        raise ProviderNotConfigured(
            f"The {secret_name} secret points at a private or reserved address ({exc}), "
            "which this server refuses (the operator can allow it with "
            "FABRIC_ALLOW_PRIVATE_PROVIDER_URLS)."
        ) from None
