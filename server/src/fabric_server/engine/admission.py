"""Limits on how much unfinished work an organization may have at once.

A resource limit, not an access rule: it may be a little late. Each process keeps a count
per organization, read from the database at most once a second and moved on by what it
admits itself meanwhile, so checking costs no query on most requests.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection

from fabric_server.db.database import Database
from fabric_server.errors import RateLimited

_FRESH_SECONDS = 1.0


@dataclass
class _Count:
    value: int
    read_at: float
    limit: int
    own: bool  # the organization's own limit, not the server's


#: Reads an organization's own limit (None: it has none, the server's applies).
LimitOf = Callable[[Connection, str], "int | None"]


class InFlightLimit:
    """At most `limit` (0: no limit) unfinished things of one kind per organization, unless
    the organization has a limit of its own (`limit_of`)."""

    def __init__(
        self,
        db: Database,
        *,
        what: str,
        setting: str,
        limit: int,
        count: Callable[[Connection, str], int],
        limit_of: LimitOf | None = None,
    ) -> None:
        self.db = db
        self.what = what
        self.setting = setting
        self.limit = limit
        self._count = count
        self._limit_of = limit_of
        self._counts: dict[str, _Count] = {}

    def forget(self, org_id: str) -> None:
        """The organization's limit changed: read it again on its next admission."""
        self._counts.pop(org_id, None)

    async def admit(self, org_id: str, adding: int = 1) -> None:
        """Raise 429 `rate_limited` when `adding` more would pass the limit."""
        if self.limit <= 0 and self._limit_of is None:
            return
        now = time.monotonic()
        known = self._counts.get(org_id)
        if known is None or now - known.read_at > _FRESH_SECONDS:
            known = self._counts[org_id] = await self.db.run_read(
                lambda conn: self._read(conn, org_id, now)
            )
            if len(self._counts) > 10_000:
                self._counts = {org_id: known}
        if known.limit <= 0:
            return
        if known.value + adding > known.limit:
            source = (
                "the organization's own limit (PUT /v1/organizations/{id}/limits)"
                if known.own
                else self.setting
            )
            raise RateLimited(
                f"The organization has {known.value} {self.what} unfinished, and at most "
                f"{known.limit} may be ({source}); try again once some have finished.",
                retry_after=1,
                details={"limit": known.limit, "in_flight": known.value},
            )
        known.value += adding

    def _read(self, conn: Connection, org_id: str, now: float) -> _Count:
        own = self._limit_of(conn, org_id) if self._limit_of is not None else None
        limit = self.limit if own is None else own
        value = self._count(conn, org_id) if limit > 0 else 0
        return _Count(value, now, limit, own is not None)
