"""Builds the schedules domain from the shared services."""

from __future__ import annotations

from dataclasses import dataclass

from fabric_server.assembly import Assembled, Platform
from fabric_server.db.database import Database
from fabric_server.events.broadcaster import Broadcaster
from fabric_server.schedules.firing import ScheduleFirer
from fabric_server.schedules.scheduler import Scheduler
from fabric_server.schedules.service import ScheduleService
from fabric_server.workflows.wiring import Workflows


@dataclass(kw_only=True)
class Schedules(Assembled):
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


def assemble(platform: Platform, workflows: Workflows) -> Schedules:
    settings, db = platform.settings, platform.db
    firer = ScheduleFirer(
        db,
        platform.events,
        workflows.runs.launcher,
        misfire_grace_seconds=settings.scheduler_misfire_grace_seconds,
    )
    return Schedules(
        firer=firer,
        service=ScheduleService(platform.access, firer, workflows.runs.lifecycle),
        db=db,
        broadcaster=platform.broadcaster,
        poll_seconds=settings.scheduler_poll_seconds,
    )
