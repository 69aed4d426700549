"""Delivery history retention: finished deliveries, with their attempts, are deleted some
days after they finished. Deliveries still pending or retrying are never touched."""

from __future__ import annotations

import datetime as dt

from fabric_server.db.database import Database
from fabric_server.webhooks import repository

BATCH = 1000


async def prune_deliveries(db: Database, older_than: dt.datetime, *, batch: int = BATCH) -> int:
    """Delete deliveries that finished (succeeded or failed) before `older_than`, `batch` per
    transaction; returns how many were deleted. Their attempts go with them."""
    total = 0
    while True:
        async with db.write() as session:
            removed = await repository.delete_finished_deliveries(session, older_than, batch)
        total += removed
        if removed < batch:
            return total
