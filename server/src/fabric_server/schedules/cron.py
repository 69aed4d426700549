"""Cron expressions: the standard five fields, parsed into the sets of values they allow.

The dialect (see docs/schedules.md):

* five fields — minute (0-59), hour (0-23), day of month (1-31), month (1-12 or JAN-DEC),
  day of week (0-7 or SUN-SAT; 0 and 7 are Sunday) — separated by spaces;
* in each field: `*`, a value, a range `a-b`, a step `*/n`, `a-b/n` or `a/n` (from `a` to the
  end of the field), and comma-separated lists of these; names are case-insensitive;
* the aliases `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`;
* days as in Vixie cron: when both day fields are restricted (neither starts with `*`), a day
  matches if *either* matches (`0 0 1,15 * MON`: the 1st, the 15th and every Monday);
  otherwise both must (`0 0 * * MON`: Mondays only).

There are no seconds, no `?`, `L`, `W` or `#`: they are rejected with the reason.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass


class CronError(ValueError):
    """The expression is not valid; the message says why."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    # Where `*` and open-ended steps stop (day of week: Saturday, although 7 is allowed).
    star_high: int | None = None

    def value(self, text: str) -> int:
        upper = text.upper()
        if self.names and upper in self.names:
            return self.names.index(upper) + self.low
        if not _NUMBER.fullmatch(text):
            kind = "a number" if not self.names else f"a number or a name ({self._name_hint})"
            raise CronError(f"{self.name}: {text!r} is not {kind}")
        number = int(text)
        if not self.low <= number <= self.high:
            raise CronError(f"{self.name}: {number} is out of range {self.low}-{self.high}")
        return number

    @property
    def _name_hint(self) -> str:
        return f"{self.names[0]}-{self.names[-1]}"

    @property
    def end(self) -> int:
        return self.high if self.star_high is None else self.star_high


_NUMBER = re.compile(r"[0-9]{1,4}")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day-of-month", 1, 31),
    _Field("month", 1, 12, _MONTHS),
    _Field("day-of-week", 0, 7, _DAYS, star_high=6),
)
ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# The most days a month can have (February: in leap years).
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


@dataclass(frozen=True)
class CronExpression:
    """A parsed expression: the minutes, hours, days, months and weekdays it allows."""

    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday … 6 = Saturday
    days_either: bool  # both day fields restricted: a day matches if either does

    @classmethod
    def parse(cls, text: str) -> CronExpression:
        """Parse `text`, or raise `CronError` saying what is wrong with it."""
        if not isinstance(text, str) or not text.strip():
            raise CronError("the expression is empty")
        stripped = text.strip()
        if stripped.startswith("@"):
            alias = ALIASES.get(stripped.lower())
            if alias is None:
                known = ", ".join(ALIASES)
                raise CronError(f"unknown alias {stripped!r} (known: {known})")
            fields = alias.split()
        else:
            fields = stripped.split()
        if len(fields) != len(_FIELDS):
            hint = "; seconds are not supported" if len(fields) == 6 else ""
            raise CronError(
                "expected 5 fields (minute hour day-of-month month day-of-week), "
                f"got {len(fields)}{hint}"
            )
        minute, hour, day, month, weekday = (
            _parse_field(part, spec) for part, spec in zip(fields, _FIELDS, strict=True)
        )
        expression = cls(
            text=stripped,
            minutes=tuple(sorted(minute)),
            hours=tuple(sorted(hour)),
            days=frozenset(day),
            months=frozenset(month),
            weekdays=frozenset(d % 7 for d in weekday),
            days_either=not fields[2].startswith("*") and not fields[4].startswith("*"),
        )
        expression._check_can_fire()
        return expression

    @property
    def every_hour(self) -> bool:
        """True when the hour field allows every hour (it matters around DST changes)."""
        return len(self.hours) == 24

    def matches_day(self, day: dt.date) -> bool:
        """Whether the expression fires on this (local) calendar day at all."""
        if day.month not in self.months:
            return False
        in_month = day.day in self.days
        in_week = day.isoweekday() % 7 in self.weekdays
        return (in_month or in_week) if self.days_either else (in_month and in_week)

    def _check_can_fire(self) -> None:
        if self.days_either:
            return  # every month has every weekday
        if not any(d <= _MONTH_DAYS[m - 1] for m in self.months for d in self.days):
            raise CronError(
                "the expression never fires: no selected month has the selected day of month"
            )


def _parse_field(text: str, field: _Field) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise CronError(f"{field.name}: empty item in list {text!r}")
        values.update(_parse_item(part, field))
    return values


def _parse_item(part: str, field: _Field) -> range:
    body, slash, step_text = part.partition("/")
    step = 1
    if slash:
        if not _NUMBER.fullmatch(step_text):
            raise CronError(f"{field.name}: step {step_text!r} in {part!r} is not a number")
        step = int(step_text)
        if step < 1:
            raise CronError(f"{field.name}: step must be at least 1 in {part!r}")
    if body == "*":
        start, end = field.low, field.end
    elif "-" in body:
        first, _, last = body.partition("-")
        start, end = field.value(first), field.value(last)
        if start > end:
            raise CronError(f"{field.name}: range {body!r} runs backwards (write it as two ranges)")
    elif body:
        start = field.value(body)
        end = field.end if slash else start
        if slash and start > end:
            raise CronError(f"{field.name}: {part!r} selects nothing")
    else:
        raise CronError(f"{field.name}: {part!r} has no value")
    return range(start, end + 1, step)
