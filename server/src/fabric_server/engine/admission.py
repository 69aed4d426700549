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


class InFlightLimit:
    """At most `limit` (0: no limit) unfinished things of one kind per organization."""

    def __init__(
        self,
        db: Database,
        *,
        what: str,
        setting: str,
        limit: int,
        count: Callable[[Connection, str], int],
    ) -> None:
        self.db = db
        self.what = what
        self.setting = setting
        self.limit = limit
        self._count = count
        self._counts: dict[str, _Count] = {}

    async def admit(self, org_id: str, adding: int = 1) -> None:
        """Raise 429 `rate_limited` when `adding` more would pass the limit."""
        if self.limit <= 0:
            return
        now = time.monotonic()
        known = self._counts.get(org_id)
        if known is None or now - known.read_at > _FRESH_SECONDS:
            value = await self.db.run_read(lambda conn: self._count(conn, org_id))
            known = self._counts[org_id] = _Count(value, now)
            if len(self._counts) > 10_000:
                self._counts = {org_id: known}
        if known.value + adding > self.limit:
            raise RateLimited(
                f"The organization has {known.value} {self.what} unfinished, and at most "
                f"{self.limit} may be ({self.setting}); try again once some have finished.",
                retry_after=1,
                details={"limit": self.limit, "in_flight": known.value},
            )
        known.value += adding
