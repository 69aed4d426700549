"""`workflow.task.expire`: a code worker's task that no worker took within the node's
`schedule_to_start_timeout` is withdrawn, and the node fails saying so."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.db.database import Database
from fabric_server.db.types import utcnow
from fabric_server.db.writer import Tx
from fabric_server.engine.handler import RetryingHandler
from fabric_server.engine.models import WorkItem
from fabric_server.engine.queue import LeasePool, WorkQueue
from fabric_server.workflows import machine
from fabric_server.workflows.effects import task_kind
from fabric_server.workflows.executor import Steps
from fabric_server.workflows.node_state import AwaitingWorker

log = logging.getLogger("fabric_server.workers")


class TaskExpiryHandler(RetryingHandler):
    def __init__(self, db: Database, queue: WorkQueue, steps: Steps) -> None:
        super().__init__(db, queue)
        self.steps = steps

    async def execute(self, item: WorkItem) -> None:
        await self.steps.write(item, lambda tx, pool: self._expire(tx, item, pool))

    def _expire(self, tx: Tx, item: WorkItem, pool: LeasePool) -> None:
        core, expiry = self.steps.core, item.payload
        loaded = core.load(tx, str(expiry.get("run_id", "")))
        node = None if loaded is None else loaded.node_by_id(item.ref_id or "")
        operation = str(expiry.get("operation", ""))
        kind = task_kind(operation)
        if (
            loaded is not None
            and node is not None
            and isinstance(node.state, AwaitingWorker)
            and machine.owns_attempt(loaded.run, node, int(expiry.get("attempt", 0)))
            and self.queue.has_queued_in(tx, kind, node.id)  # no worker took it
        ):
            self.queue.cancel_in(tx, kind, node.id)
            error = (
                f"no code worker took the task within {float(expiry.get('seconds', 0)):g} s "
                f"(schedule_to_start_timeout); is a worker serving {operation} running?"
            )
            step = machine.task_reported(
                loaded.run,
                loaded.nodes,
                node.key,
                output=None,
                error=error,
                permanent=True,
                retry_delay=0,
                now=utcnow(),
            )
            core.apply(tx, loaded, [step], pool)
        self.queue.finish_in(tx, item)

    async def on_failure(self, session: AsyncSession, item: WorkItem, error: str) -> None:
        # The task keeps waiting for a worker; the node's own time limit still applies.
        log.error("expiring the task of node %s failed: %s", item.ref_id, error)
