"""Credential retention: sessions, refresh tokens and mailed tokens that can no longer be used
are deleted some days after they stopped working (`FABRIC_AUTH_RETENTION_DAYS`).

The grace window keeps recent history readable — a revoked session, a used link — and keeps
a used refresh token around for its whole lifetime, so that presenting it again still signs
its session out. Nothing still usable is ever deleted.
"""

from __future__ import annotations

import datetime as dt

from fabric_server.auth import repository
from fabric_server.db.database import Database
from fabric_server.events.retention import delete_in_batches

BATCH = 1000


async def prune_sessions(db: Database, older_than: dt.datetime, *, batch: int = BATCH) -> int:
    """Delete sessions that expired or were revoked before `older_than`, with their refresh
    tokens; returns how many sessions were deleted."""
    return await delete_in_batches(db, repository.delete_ended_sessions, older_than, batch)


async def prune_refresh_tokens(db: Database, older_than: dt.datetime, *, batch: int = BATCH) -> int:
    """Delete refresh tokens that expired before `older_than` (in sessions still open: the
    tokens each refresh used up); returns how many were deleted."""
    return await delete_in_batches(db, repository.delete_expired_refresh_tokens, older_than, batch)


async def prune_sign_in_throttles(
    db: Database, older_than: dt.datetime, *, batch: int = BATCH
) -> int:
    """Delete failed-sign-in counters whose last failure and lock ended before `older_than`;
    returns how many were deleted."""
    return await delete_in_batches(db, repository.delete_stale_throttles, older_than, batch)


async def prune_mailed_tokens(db: Database, older_than: dt.datetime, *, batch: int = BATCH) -> int:
    """Delete verification, magic-link and password-reset tokens that expired or were used
    before `older_than`; returns how many were deleted."""
    return await delete_in_batches(db, repository.delete_spent_one_time_tokens, older_than, batch)
