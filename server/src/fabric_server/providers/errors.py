"""How provider failures reach callers: one domain error per kind, each with a stable code.

`transient` says whether trying again later can help (a job retries those); `fallback` says
whether routing may try the next eligible provider instead. Input mistakes never fall back:
another provider would reject them too.
"""

from __future__ import annotations

from typing import Any

from fabric_server.errors import DomainError, RateLimited


class ProviderError(DomainError):
    transient = False
    fallback = True

    def __init__(
        self, message: str, *, provider_id: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        if provider_id is not None:
            details = {"provider_id": provider_id, **(details or {})}
        DomainError.__init__(self, message, details=details)
        self.provider_id = provider_id


class ProviderNotConfigured(ProviderError):
    """No credentials (or no usable endpoint) for the provider the request needs."""

    status_code = 422
    code = "provider_not_configured"


class ProviderAuthFailed(ProviderError):
    """The upstream refused the credentials (HTTP 401/403).

    424 Failed Dependency: the request was fine, the stored credentials are not. It is not a
    502, because no retry will help until someone fixes the secret.
    """

    status_code = 424
    code = "provider_auth_failed"


class ProviderRejected(ProviderError):
    """The upstream refused the request itself (HTTP 400/404/422…): fix the input."""

    status_code = 422
    code = "provider_rejected_request"
    fallback = False


class ProviderRateLimited(ProviderError, RateLimited):
    status_code = 429
    code = "rate_limited"
    transient = True

    def __init__(
        self,
        message: str,
        *,
        retry_after: int,
        provider_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        ProviderError.__init__(self, message, provider_id=provider_id, details=details)
        self.retry_after = retry_after


class UpstreamTimeout(ProviderError):
    status_code = 504
    code = "upstream_timeout"
    transient = True


class UpstreamError(ProviderError):
    """The upstream failed (5xx, a dropped connection, a reply we cannot read)."""

    status_code = 502
    code = "upstream_error"
    transient = True


class ProviderUnavailable(ProviderError):
    """Every eligible provider is failing right now (their circuit breakers are open)."""

    status_code = 503
    code = "provider_unavailable"
    transient = True
