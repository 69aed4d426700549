"""Builds the schedules domain from the shared services."""

from __future__ import annotations

from dataclasses import dataclass

from fabric_server.access.service import Access
from fabric_server.db.database import Database
from fabric_server.events.broadcaster import Broadcaster
from fabric_server.events.outbox import EventRecorder
from fabric_server.schedules.firing import ScheduleFirer
from fabric_server.schedules.scheduler import Scheduler
from fabric_server.schedules.service import ScheduleService
from fabric_server.settings import Settings
from fabric_server.workflows.wiring import Workflows


@dataclass
class Schedules:
    firer: ScheduleFirer
    service: ScheduleService
    db: Database
    broadcaster: Broadcaster
    poll_seconds: float

    def new_scheduler(self) -> Scheduler:
        """A scheduler loop for this process; schedule changes made here wake it."""
        scheduler = Scheduler(
            self.db, self.firer, poll_seconds=self.poll_seconds, broadcaster=self.broadcaster
        )
        self.service.on_change(scheduler.wake)
        return scheduler


def build_schedules(
    settings: Settings,
    db: Database,
    events: EventRecorder,
    access: Access,
    workflows: Workflows,
    broadcaster: Broadcaster,
) -> Schedules:
    firer = ScheduleFirer(
        db,
        events,
        workflows.runs.launcher,
        misfire_grace_seconds=settings.scheduler_misfire_grace_seconds,
    )
    return Schedules(
        firer=firer,
        service=ScheduleService(access, firer, workflows.runs.lifecycle),
        db=db,
        broadcaster=broadcaster,
        poll_seconds=settings.scheduler_poll_seconds,
    )
