"""Invitation retention: invitations that expired or were revoked are deleted some days later
(`FABRIC_AUTH_RETENTION_DAYS`, like other spent credentials). Accepted invitations stay as the
record of how members joined; pending ones are deleted only once expired."""

from __future__ import annotations

import datetime as dt

from fabric_server.db.database import Database
from fabric_server.events.retention import delete_in_batches
from fabric_server.orgs import repository

BATCH = 1000


async def prune_invitations(db: Database, older_than: dt.datetime, *, batch: int = BATCH) -> int:
    """Delete invitations that expired or were revoked before `older_than`; returns how many
    were deleted."""
    return await delete_in_batches(db, repository.delete_dead_invitations, older_than, batch)
