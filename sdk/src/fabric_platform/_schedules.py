"""Schedules: start workflow runs on a cron schedule, trigger them by hand, read the history."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, Optional, cast

from ._base import QueryValue, encode_path, query
from ._core import AsyncClientCore, SyncClientCore
from ._paging import aiterate_pages, iterate_pages
from .types import Schedule, ScheduleDeleted, ScheduleHistoryEntry, ScheduleTrigger

_OF_WORKFLOW = "/v1/workflow-definitions/{}/schedules"
_SCHEDULE = "/v1/schedules/{}"


def _create_body(cron_expression: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {"cron_expression": cron_expression, **fields}


def _history_params(limit: Optional[int], cursor: Optional[str]) -> dict[str, QueryValue]:
    return query(limit=limit, cursor=cursor)


def _schedule_path(schedule_id: str, suffix: str = "") -> str:
    return encode_path(_SCHEDULE + suffix, schedule_id)


class SchedulesMethods(SyncClientCore):
    def create_schedule(
        self, workflow_definition_id: str, cron_expression: str, **kwargs: Any
    ) -> Schedule:
        """Run the workflow on a cron schedule, e.g. ``"0 9 * * 1-5"`` (weekdays at 9:00).

        Optional fields, sent as given: ``timezone`` (IANA name, default ``"UTC"``),
        ``input_context`` (each run's starting context), ``enabled`` (default true),
        ``concurrency_policy`` (``"allow"``, ``"skip"`` or ``"queue"``: what to do while the
        previous run is still active), ``catchup_policy`` (``"skip"`` or ``"latest"``: what to do
        with occurrences missed while no server ran), ``priority`` and ``description``.
        """
        path = encode_path(_OF_WORKFLOW, workflow_definition_id)
        body = _create_body(cron_expression, kwargs)
        return cast(Schedule, self._request("POST", path, body=body))

    def list_schedules(self, workflow_definition_id: str) -> list[Schedule]:
        """The schedules of the workflow."""
        path = encode_path(_OF_WORKFLOW, workflow_definition_id)
        return cast("list[Schedule]", self._request("GET", path))

    def get_schedule(self, schedule_id: str) -> Schedule:
        """The schedule ``schedule_id``, with its ``next_run_at`` (UTC)."""
        return cast(Schedule, self._request("GET", _schedule_path(schedule_id)))

    def update_schedule(self, schedule_id: str, **kwargs: Any) -> Schedule:
        """Change the fields given (same names as `create_schedule`); returns the schedule.

        A new ``cron_expression`` or ``timezone``, or re-enabling, plans the next run from now.
        """
        path = _schedule_path(schedule_id)
        return cast(Schedule, self._request("PATCH", path, body=dict(kwargs)))

    def trigger_schedule(self, schedule_id: str) -> ScheduleTrigger:
        """Start a run now: ``{"run_id", "schedule_id", "triggered_at", "trigger": "manual"}``.

        It is recorded in the schedule's history. Not retried automatically: a resend could
        start a second run.
        """
        path = _schedule_path(schedule_id, "/trigger")
        return cast(ScheduleTrigger, self._request("POST", path))

    def schedule_history(
        self, schedule_id: str, *, limit: Optional[int] = None, cursor: Optional[str] = None
    ) -> list[ScheduleHistoryEntry]:
        """The schedule's firings, newest first: runs started and occurrences skipped.

        For older entries pass ``cursor=`` the ``id`` of the last entry received
        (`iter_schedule_history` does so).
        """
        path = _schedule_path(schedule_id, "/history")
        params = _history_params(limit, cursor)
        return cast("list[ScheduleHistoryEntry]", self._request("GET", path, params=params))

    def iter_schedule_history(
        self, schedule_id: str, *, page_size: int = 50
    ) -> Iterator[ScheduleHistoryEntry]:
        """Every firing of the schedule, newest first, fetching pages as iteration needs them."""
        yield from iterate_pages(
            lambda cursor: self.schedule_history(schedule_id, limit=page_size, cursor=cursor),
            page_size,
        )

    def delete_schedule(self, schedule_id: str) -> ScheduleDeleted:
        """Stop the schedule for good; its history goes with it, the runs it started stay."""
        return cast(ScheduleDeleted, self._request("DELETE", _schedule_path(schedule_id)))


class AsyncSchedulesMethods(AsyncClientCore):
    async def create_schedule(
        self, workflow_definition_id: str, cron_expression: str, **kwargs: Any
    ) -> Schedule:
        """Run the workflow on a cron schedule (see `FabricClient.create_schedule`)."""
        path = encode_path(_OF_WORKFLOW, workflow_definition_id)
        body = _create_body(cron_expression, kwargs)
        return cast(Schedule, await self._request("POST", path, body=body))

    async def list_schedules(self, workflow_definition_id: str) -> list[Schedule]:
        """The schedules of the workflow."""
        path = encode_path(_OF_WORKFLOW, workflow_definition_id)
        return cast("list[Schedule]", await self._request("GET", path))

    async def get_schedule(self, schedule_id: str) -> Schedule:
        """The schedule ``schedule_id``, with its ``next_run_at`` (UTC)."""
        return cast(Schedule, await self._request("GET", _schedule_path(schedule_id)))

    async def update_schedule(self, schedule_id: str, **kwargs: Any) -> Schedule:
        """Change the fields given (same names as `create_schedule`); returns the schedule."""
        path = _schedule_path(schedule_id)
        return cast(Schedule, await self._request("PATCH", path, body=dict(kwargs)))

    async def trigger_schedule(self, schedule_id: str) -> ScheduleTrigger:
        """Start a run now; recorded in the schedule's history as a manual trigger."""
        path = _schedule_path(schedule_id, "/trigger")
        return cast(ScheduleTrigger, await self._request("POST", path))

    async def schedule_history(
        self, schedule_id: str, *, limit: Optional[int] = None, cursor: Optional[str] = None
    ) -> list[ScheduleHistoryEntry]:
        """The schedule's firings, newest first (``cursor``: the id of the last one seen)."""
        path = _schedule_path(schedule_id, "/history")
        params = _history_params(limit, cursor)
        history = await self._request("GET", path, params=params)
        return cast("list[ScheduleHistoryEntry]", history)

    async def iter_schedule_history(
        self, schedule_id: str, *, page_size: int = 50
    ) -> AsyncIterator[ScheduleHistoryEntry]:
        """Every firing of the schedule, newest first (``async for``)."""
        pages = aiterate_pages(
            lambda cursor: self.schedule_history(schedule_id, limit=page_size, cursor=cursor),
            page_size,
        )
        async for entry in pages:
            yield entry

    async def delete_schedule(self, schedule_id: str) -> ScheduleDeleted:
        """Stop the schedule for good; its history goes with it, the runs it started stay."""
        return cast(ScheduleDeleted, await self._request("DELETE", _schedule_path(schedule_id)))
