"""Helpers for the schedule tests: a clock the test moves, and short API calls."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select
from workflow_helpers import app_client, define

from fabric_server.schedules.scheduler import Scheduler
from fabric_server.services import Services
from fabric_server.settings import Settings
from fabric_server.workflows.models import WorkflowRun

UTC = dt.UTC
NOOP = [{"key": "step", "operation": "workflow.noop"}]
# A run that stays active (waiting) until the test resumes it.
APPROVAL = [{"key": "approval", "operation": "workflow.approval"}]


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


class FakeClock:
    """The schedules' idea of now: moved by the test, never by real time."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def set(self, when: dt.datetime) -> None:
        self.now = when

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@dataclass
class Harness:
    client: httpx.AsyncClient
    services: Services
    clock: FakeClock
    scheduler: Scheduler

    async def tick(self) -> int:
        return await self.scheduler.tick()

    async def definition(self, nodes: list[dict[str, Any]] | None = None) -> str:
        return str((await define(self.client, nodes or NOOP))["id"])

    async def create(self, definition_id: str, cron: str, **fields: Any) -> dict[str, Any]:
        response = await self.client.post(
            f"/v1/workflow-definitions/{definition_id}/schedules",
            json={"cron_expression": cron, **fields},
        )
        assert response.status_code == 201, response.text
        schedule: dict[str, Any] = response.json()["data"]
        return schedule

    async def get(self, schedule_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/v1/schedules/{schedule_id}")
        assert response.status_code == 200, response.text
        schedule: dict[str, Any] = response.json()["data"]
        return schedule

    async def patch(self, schedule_id: str, **fields: Any) -> dict[str, Any]:
        response = await self.client.patch(f"/v1/schedules/{schedule_id}", json=fields)
        assert response.status_code == 200, response.text
        schedule: dict[str, Any] = response.json()["data"]
        return schedule

    async def history(self, schedule_id: str, **params: Any) -> list[dict[str, Any]]:
        """Oldest first (the API answers newest first)."""
        response = await self.client.get(
            f"/v1/schedules/{schedule_id}/history", params={"limit": 200, **params}
        )
        assert response.status_code == 200, response.text
        return list(reversed(response.json()["data"]))

    async def runs_of(self, definition_id: str) -> list[WorkflowRun]:
        async with self.services.db.read() as session:
            rows = await session.scalars(
                select(WorkflowRun)
                .where(WorkflowRun.workflow_definition_id == definition_id)
                .order_by(WorkflowRun.created_at, WorkflowRun.id)
            )
            return list(rows)


@asynccontextmanager
async def harness(settings: Settings, start: dt.datetime) -> AsyncIterator[Harness]:
    """The app with workers but without its own scheduler: the test drives the passes."""
    settings = settings.model_copy(update={"scheduler_enabled": False})
    async with app_client(settings) as (client, services):
        clock = FakeClock(start)
        services.schedules.firer.clock = clock
        yield Harness(client, services, clock, services.schedules.new_scheduler())


def scheduled(history: list[dict[str, Any]]) -> list[str | None]:
    return [entry["scheduled_for"] for entry in history]


def iso(when: dt.datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
