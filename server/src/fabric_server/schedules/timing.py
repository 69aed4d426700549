"""When a cron expression fires in a time zone: instants in UTC, with explicit DST rules.

A schedule reads its expression on the local wall clock of its IANA zone. Two days a year
that clock jumps, and the rules are (docs/schedules.md):

* **Clocks go forward** (a local time that does not exist, e.g. 02:30 in New York on the
  spring-forward day): a schedule for specific hours fires at the first instant after the gap
  (03:00 local); several times in one gap fire once. A schedule for every hour (`*` in the
  hour field) just has no firings in the missing hour, like every other hour that did not
  happen: its firings stay evenly spaced in real time.
* **Clocks go back** (a local time that happens twice, e.g. 01:30 in New York on the
  fall-back day): a schedule for specific hours fires once, at the first occurrence. A
  schedule for every hour fires at both, so it keeps its rhythm through the repeated hour.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import zoneinfo

from fabric_server.schedules.cron import CronError, CronExpression

UTC = dt.UTC
# The longest a valid expression can go without firing is a bit over 11 years (a 1st of the
# month on a given weekday); search a little further before giving up.
_SEARCH_DAYS = 366 * 14
_DAY_CACHE = 64
_ONE_DAY = dt.timedelta(days=1)
_SECOND = dt.timedelta(seconds=1)


class TimezoneError(ValueError):
    """Not an IANA time zone name."""


@functools.cache
def _zone_names() -> dict[str, str]:
    names = zoneinfo.available_timezones() | {"UTC"}
    return {name.lower(): name for name in names}


def canonical_timezone(name: str) -> str:
    """The zone's canonical spelling (`europe/berlin` → `Europe/Berlin`); raises
    `TimezoneError` for anything that is not an IANA zone name."""
    found = _zone_names().get(name.strip().lower()) if isinstance(name, str) else None
    if found is None:
        raise TimezoneError(
            f"{name!r} is not an IANA time zone name (e.g. 'UTC', 'Europe/Berlin', "
            "'America/New_York')"
        )
    return found


class CronSchedule:
    """A cron expression read in a time zone; answers which UTC instants it fires at."""

    def __init__(self, expression: CronExpression, zone: zoneinfo.ZoneInfo) -> None:
        self.expression = expression
        self.zone = zone
        self._days: dict[dt.date, list[dt.datetime]] = {}

    @classmethod
    def parse(cls, expression: str, timezone: str = "UTC") -> CronSchedule:
        """Raises `CronError` or `TimezoneError` with the reason."""
        cron = CronExpression.parse(expression)
        return cls(cron, zoneinfo.ZoneInfo(canonical_timezone(timezone)))

    def next_after(self, instant: dt.datetime) -> dt.datetime | None:
        """The first firing strictly after `instant` (None: not within the next 14 years)."""
        day = self._local_date(instant)
        for _ in range(_SEARCH_DAYS):
            firings = self.firings_on(day)
            index = bisect.bisect_right(firings, instant)
            if index < len(firings):
                return firings[index]
            day += _ONE_DAY
        return None

    def latest_until(
        self, newest: dt.datetime, oldest: dt.datetime, limit: int
    ) -> list[dt.datetime]:
        """Up to `limit` firings in [oldest, newest], newest first."""
        found: list[dt.datetime] = []
        day = self._local_date(newest)
        last_day = self._local_date(oldest) - _ONE_DAY
        while day >= last_day and len(found) < limit:
            for instant in reversed(self.firings_on(day)):
                if instant > newest:
                    continue
                if instant < oldest or len(found) == limit:
                    return found
                found.append(instant)
            day -= _ONE_DAY
        return found

    def firings_on(self, day: dt.date) -> list[dt.datetime]:
        """The UTC instants at which the expression fires on this local calendar day, sorted."""
        cached = self._days.get(day)
        if cached is None:
            if len(self._days) >= _DAY_CACHE:
                self._days.clear()
            cached = self._days[day] = self._compute_day(day)
        return cached

    def _local_date(self, instant: dt.datetime) -> dt.date:
        if instant.tzinfo is None:
            raise ValueError("naive datetime: pass an aware (UTC) instant")
        return instant.astimezone(self.zone).date()

    def _compute_day(self, day: dt.date) -> list[dt.datetime]:
        cron = self.expression
        if not cron.matches_day(day):
            return []
        walls = [
            dt.datetime(day.year, day.month, day.day, hour, minute)
            for hour in cron.hours
            for minute in cron.minutes
        ]
        # Many firings a day: check once that the clock does not change today, then shift.
        offset = self._steady_offset(day) if len(walls) > 32 else None
        if offset is not None:
            return [(wall - offset).replace(tzinfo=UTC) for wall in walls]
        instants: set[dt.datetime] = set()
        for wall in walls:
            instants.update(self._instants_of(wall))
        return sorted(instants)

    def _steady_offset(self, day: dt.date) -> dt.timedelta | None:
        """The UTC offset of the whole day when the clock does not change on it, else None."""
        start = dt.datetime(day.year, day.month, day.day)
        samples = [start + dt.timedelta(hours=hour) for hour in range(25)]
        offsets = {
            wall.replace(tzinfo=self.zone, fold=fold).utcoffset()
            for wall in samples
            for fold in (0, 1)
        }
        if len(offsets) != 1:
            return None
        (offset,) = offsets
        return offset

    def _instants_of(self, wall: dt.datetime) -> list[dt.datetime]:
        first = wall.replace(tzinfo=self.zone, fold=0)
        second = wall.replace(tzinfo=self.zone, fold=1)
        before, after = first.utcoffset(), second.utcoffset()
        assert before is not None
        assert after is not None
        if before == after:
            return [first.astimezone(UTC)]
        if before > after:  # the clock went back: this wall time happens twice
            twice = [first.astimezone(UTC), second.astimezone(UTC)]
            return twice if self.expression.every_hour else twice[:1]
        # The clock went forward over this wall time: it never happens.
        if self.expression.every_hour:
            return []
        return [self._gap_end(wall, before, after)]

    def _gap_end(self, wall: dt.datetime, before: dt.timedelta, after: dt.timedelta) -> dt.datetime:
        """The instant the clock jumped over `wall`: the first valid one after it."""
        # Read with the new offset, `wall` lands before the jump; with the old one, after it.
        low = (wall - after).replace(tzinfo=UTC)
        high = (wall - before).replace(tzinfo=UTC)
        while high - low > _SECOND:
            middle = low + (high - low) / 2
            middle = middle.replace(microsecond=0)
            if middle.astimezone(self.zone).utcoffset() == after:
                high = middle
            else:
                low = middle
        return high


__all__ = ["CronError", "CronSchedule", "TimezoneError", "canonical_timezone"]
