"""Background work of a server process: workers, the scheduler, the webhook dispatcher,
the PostgreSQL listener, retention.

`fabric-server serve` runs it beside the API; `fabric-server worker` runs it alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from functools import partial

from fabric_server.auth.retention import (
    prune_mailed_tokens,
    prune_refresh_tokens,
    prune_sessions,
    prune_sign_in_throttles,
)
from fabric_server.db.database import PROCESS_TOKEN
from fabric_server.engine.queue import WORK_CHANNEL
from fabric_server.engine.worker import Worker
from fabric_server.events.outbox import EVENTS_CHANNEL
from fabric_server.events.pg_listener import PgListener
from fabric_server.events.retention import RetentionRule, prune_events, retention_loop
from fabric_server.orgs.retention import prune_invitations
from fabric_server.schedules.scheduler import Scheduler
from fabric_server.services import Services
from fabric_server.webhooks.retention import prune_deliveries

log = logging.getLogger("fabric_server.runtime")


def retention_rules(services: Services) -> list[RetentionRule]:
    """What the retention task prunes: the kinds of history whose retention is not 0."""
    settings, db = services.settings, services.db
    rules = [
        RetentionRule("events", settings.event_retention_days, partial(prune_events, db)),
        RetentionRule(
            "webhook deliveries",
            settings.webhook_delivery_retention_days,
            partial(prune_deliveries, db),
        ),
        # Spent credentials: sessions first, so their refresh tokens go with them.
        RetentionRule("sessions", settings.auth_retention_days, partial(prune_sessions, db)),
        RetentionRule(
            "refresh tokens", settings.auth_retention_days, partial(prune_refresh_tokens, db)
        ),
        RetentionRule(
            "mailed tokens", settings.auth_retention_days, partial(prune_mailed_tokens, db)
        ),
        RetentionRule("invitations", settings.auth_retention_days, partial(prune_invitations, db)),
        RetentionRule(
            "sign-in throttles",
            settings.auth_retention_days,
            partial(prune_sign_in_throttles, db),
        ),
    ]
    return [rule for rule in rules if rule.days > 0]


async def _every(
    seconds: float, step: Callable[[], Awaitable[object]], stopping: asyncio.Event
) -> None:
    """Run `step` every `seconds` until `stopping` is set (a failing step is logged)."""
    while not stopping.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), seconds)
        if stopping.is_set():
            return
        try:
            await step()
        except Exception:
            log.exception("a periodic task failed; it runs again next time")


class Background:
    def __init__(self, services: Services, *, run_workers: bool) -> None:
        self.services = services
        self.run_workers = run_workers
        self.workers: list[Worker] = []
        self.listener: PgListener | None = None
        self.scheduler: Scheduler | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        services, settings = self.services, self.services.settings
        if not services.db.is_sqlite:
            self.listener = PgListener(
                services.db.url,
                {
                    EVENTS_CHANNEL: self._events_elsewhere,
                    WORK_CHANNEL: services.queue.wake_workers,
                },
                own_token=PROCESS_TOKEN,
            )
            self.listener.start()
        rules = retention_rules(services)
        if rules:
            loop = retention_loop(rules, settings.retention_interval_seconds, self._stopping)
            self._tasks.append(asyncio.create_task(loop, name="retention"))
        if self.run_workers:
            self.workers = [services.new_worker()]
            for worker in self.workers:
                worker.start()
            services.queue.attach_local(self.workers[0])
            services.webhooks.dispatcher.start()
            sweep = _every(
                settings.worker_heartbeat_seconds, services.workers.sweep, self._stopping
            )
            self._tasks.append(asyncio.create_task(sweep, name="code worker sweep"))
            if settings.scheduler_enabled:
                self.scheduler = services.schedules.new_scheduler()
                self.scheduler.start()

    def _events_elsewhere(self) -> None:
        self.services.hub.changed_elsewhere()
        self.services.webhooks.dispatcher.changed_elsewhere()
        self.services.broadcaster.notify()

    def begin_stop(self) -> None:
        """Stop claiming work now: running items get the grace period from this moment, so
        it runs alongside the API's own (`stop` finishes the job)."""
        self.services.queue.attach_local(None)
        for worker in self.workers:
            worker.request_stop()

    async def stop(self) -> None:
        """Stop everything: workers hand back what did not finish within the grace period."""
        self._stopping.set()
        await self.services.webhooks.dispatcher.stop()
        if self.scheduler is not None:
            await self.scheduler.stop()
        self.services.queue.attach_local(None)
        for worker in self.workers:
            await worker.stop()
        await self.services.webhooks.aclose()
        if self._tasks:
            # Let periodic tasks finish the step they are in; cancel only stragglers.
            _, late = await asyncio.wait(self._tasks, timeout=10)
            for task in late:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.listener is not None:
            await self.listener.stop()
        await self.services.hub.close()
