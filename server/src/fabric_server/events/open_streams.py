"""The event streams open in this process, counted per principal and per organization.

A stream is counted from the moment it is admitted until its response ends, however it
ends (terminal event, lifetime, the client going away, the server stopping). Beyond a cap,
a new stream is refused with `429 rate_limited`; streams already open are never cut.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection

from fabric_server.errors import RateLimited
from fabric_server.observability.metrics import SSE_OPEN

# A client refused for having too many streams open may try again once one of them ends.
_RETRY_AFTER_SECONDS = 5


class OpenStream:
    """One admitted stream; `release` (idempotent) gives its place back."""

    def __init__(self, streams: OpenStreams, principal_id: str, org_ids: tuple[str, ...]) -> None:
        self._streams = streams
        self.principal_id = principal_id
        self.org_ids = org_ids
        self.released = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self._streams.release(self)


class OpenStreams:
    def __init__(self, *, per_principal: int, per_organization: int) -> None:
        self.per_principal = per_principal
        self.per_organization = per_organization
        self.by_principal: Counter[str] = Counter()
        self.by_organization: Counter[str] = Counter()

    def admit(self, principal_id: str, org_ids: Collection[str]) -> OpenStream:
        """Count a new stream of `principal_id` over `org_ids`, or raise `RateLimited`."""
        if self.per_principal and self.by_principal[principal_id] >= self.per_principal:
            raise RateLimited(
                f"You have {self.per_principal} event streams open, the most allowed; "
                "close one before opening another.",
                retry_after=_RETRY_AFTER_SECONDS,
                details={"limit": self.per_principal, "scope": "principal"},
            )
        orgs = tuple(dict.fromkeys(org_ids))
        for org_id in orgs:
            if self.per_organization and self.by_organization[org_id] >= self.per_organization:
                raise RateLimited(
                    f"Organization {org_id} has {self.per_organization} event streams open, "
                    "the most allowed; close one before opening another.",
                    retry_after=_RETRY_AFTER_SECONDS,
                    details={"limit": self.per_organization, "scope": "organization"},
                )
        self.by_principal[principal_id] += 1
        for org_id in orgs:
            self.by_organization[org_id] += 1
        SSE_OPEN.inc()
        return OpenStream(self, principal_id, orgs)

    def release(self, stream: OpenStream) -> None:
        SSE_OPEN.dec()
        _decrement(self.by_principal, stream.principal_id)
        for org_id in stream.org_ids:
            _decrement(self.by_organization, org_id)


def _decrement(counter: Counter[str], key: str) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]
