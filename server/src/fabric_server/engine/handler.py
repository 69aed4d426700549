"""Base class for work handlers: retries with backoff, failure after the last attempt."""

from __future__ import annotations

import abc
import logging

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.db.database import Database
from fabric_server.engine.models import WorkItem
from fabric_server.engine.queue import LeaseLost, WorkQueue

log = logging.getLogger("fabric_server.engine")


class PermanentError(Exception):
    """A failure that retrying cannot fix (bad input, unknown model…)."""


class RetryingHandler(abc.ABC):
    """Runs `execute`; transient errors are retried with backoff until attempts run out.

    `execute` must finish the item with `queue.complete(session, item)` inside the same
    transaction as its final state change.
    """

    def __init__(self, db: Database, queue: WorkQueue) -> None:
        self.db = db
        self.queue = queue

    @abc.abstractmethod
    async def execute(self, item: WorkItem) -> None: ...

    @abc.abstractmethod
    async def on_failure(self, session: AsyncSession, item: WorkItem, error: str) -> None:
        """Record the final failure (same transaction as the queue's fail)."""

    async def on_retry(  # noqa: B027 - an optional hook, empty by default
        self, session: AsyncSession, item: WorkItem, error: str
    ) -> None:
        """Optionally record a transient failure before the item is retried."""

    async def on_release(  # noqa: B027 - an optional hook, empty by default
        self, session: AsyncSession, item: WorkItem
    ) -> None:
        """Optionally undo what starting the item recorded, when a stopping worker hands it
        back (same transaction as the hand-back)."""

    async def run(self, item: WorkItem) -> None:
        log.debug("%s attempt %d of %d", item.kind, item.attempts, item.max_attempts)
        try:
            await self.execute(item)
        except LeaseLost:
            raise
        except PermanentError as exc:
            log.info("%s failed for good: %s", item.kind, exc)
            await self.give_up(item, str(exc))
            return
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            if item.attempts >= item.max_attempts:
                log.warning("%s failed after %d attempts: %s", item.kind, item.attempts, error)
                await self.give_up(item, error)
                return
            log.info("%s attempt %d failed, retried later: %s", item.kind, item.attempts, error)
            async with self.db.write() as session:
                await self.on_retry(session, item, error)
                await self.queue.retry_later(session, item, error)
            return
        log.debug("%s done", item.kind)

    async def give_up(self, item: WorkItem, error: str) -> None:
        async with self.db.write() as session:
            await self.on_failure(session, item, error)
            await self.queue.fail(session, item, error)
