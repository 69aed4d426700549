"""The cron dialect and its firing times, in UTC and across DST changes."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from fabric_server.schedules.cron import CronError, CronExpression
from fabric_server.schedules.timing import CronSchedule, TimezoneError, canonical_timezone

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    """An aware UTC instant from 'YYYY-MM-DD HH:MM'."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def upcoming(expression: str, start: str, count: int, zone: str = "UTC") -> list[str]:
    """The next firings after `start` (UTC), as local wall times with their UTC offset."""
    schedule = CronSchedule.parse(expression, zone)
    found, instant = [], at(start)
    for _ in range(count):
        following = schedule.next_after(instant)
        assert following is not None
        found.append(following.astimezone(schedule.zone).strftime("%a %Y-%m-%d %H:%M %z"))
        instant = following
    return found


# -- parsing ---------------------------------------------------------------------------------


def test_fields_lists_ranges_and_steps() -> None:
    cron = CronExpression.parse("*/15 9-17/4 1,15 * *")

    assert cron.minutes == (0, 15, 30, 45)
    assert cron.hours == (9, 13, 17)
    assert cron.days == {1, 15}
    assert cron.months == set(range(1, 13))
    assert cron.weekdays == set(range(7))


def test_open_ended_step_runs_to_the_end_of_the_field() -> None:
    assert CronExpression.parse("5/20 * * * *").minutes == (5, 25, 45)
    assert CronExpression.parse("0 0 * * 1/2").weekdays == {1, 3, 5}


@pytest.mark.parametrize(
    ("text", "months", "weekdays"),
    [
        ("0 9 * JAN-MAR MON-FRI", {1, 2, 3}, {1, 2, 3, 4, 5}),
        ("0 9 * jan,Jul sun,SAT", {1, 7}, {0, 6}),
        ("0 9 * * 7", set(range(1, 13)), {0}),  # 7 is Sunday too
        ("0 9 * * 5-7", set(range(1, 13)), {5, 6, 0}),
    ],
)
def test_month_and_day_names(text: str, months: set[int], weekdays: set[int]) -> None:
    cron = CronExpression.parse(text)
    assert cron.months == months
    assert cron.weekdays == weekdays


@pytest.mark.parametrize(
    ("alias", "fields"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@DAILY", "0 0 * * *"),
    ],
)
def test_aliases(alias: str, fields: str) -> None:
    parsed, plain = CronExpression.parse(alias), CronExpression.parse(fields)
    assert (parsed.minutes, parsed.hours, parsed.days, parsed.months, parsed.weekdays) == (
        plain.minutes,
        plain.hours,
        plain.days,
        plain.months,
        plain.weekdays,
    )
    assert parsed.days_either == plain.days_either


def test_either_day_field_matches_when_both_are_restricted() -> None:
    # The 1st and the 15th of each month, and every Monday (Vixie cron's OR rule).
    assert upcoming("0 0 1,15 * MON", "2026-06-01 00:00", 5) == [
        "Mon 2026-06-08 00:00 +0000",
        "Mon 2026-06-15 00:00 +0000",
        "Mon 2026-06-22 00:00 +0000",
        "Mon 2026-06-29 00:00 +0000",
        "Wed 2026-07-01 00:00 +0000",
    ]


def test_both_day_fields_must_match_when_one_starts_with_a_star() -> None:
    assert upcoming("0 0 * * MON", "2026-06-01 00:00", 2) == [
        "Mon 2026-06-08 00:00 +0000",
        "Mon 2026-06-15 00:00 +0000",
    ]
    # `*/2` starts with a star: odd days that are also Mondays.
    assert upcoming("0 0 */2 * MON", "2026-06-01 00:00", 3) == [
        "Mon 2026-06-15 00:00 +0000",
        "Mon 2026-06-29 00:00 +0000",
        "Mon 2026-07-13 00:00 +0000",
    ]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("* * * *", "expected 5 fields"),
        ("0 * * * * *", "seconds are not supported"),
        ("60 * * * *", "minute: 60 is out of range 0-59"),
        ("0 24 * * *", "hour: 24 is out of range 0-23"),
        ("0 0 0 * *", "day-of-month: 0 is out of range 1-31"),
        ("0 0 * 13 *", "month: 13 is out of range 1-12"),
        ("0 0 * * 8", "day-of-week: 8 is out of range 0-7"),
        ("0 0 * * FUN", "day-of-week: 'FUN' is not a number or a name (SUN-SAT)"),
        ("0 0 * MON *", "month: 'MON' is not a number or a name (JAN-DEC)"),
        ("*/0 * * * *", "step must be at least 1"),
        ("*/x * * * *", "is not a number"),
        ("5-1 * * * *", "runs backwards"),
        ("1,,2 * * * *", "empty item"),
        ("- * * * *", "minute: '' is not a number"),
        ("-5 * * * *", "minute: '' is not a number"),
        ("/5 * * * *", "has no value"),
        ("? * * * *", "not a number"),
        ("0 0 L * *", "not a number"),
        ("0 0 ٣ * *", "not a number"),  # only ASCII digits
        ("@reboot", "unknown alias"),
        ("0 0 30 2 *", "never fires"),
        ("0 0 31 4,6,9,11 *", "never fires"),
    ],
)
def test_invalid_expressions_say_why(text: str, reason: str) -> None:
    with pytest.raises(CronError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        CronExpression.parse(text)


def test_february_29th_is_a_valid_but_rare_day() -> None:
    assert upcoming("0 0 29 2 *", "2026-06-01 00:00", 2) == [
        "Tue 2028-02-29 00:00 +0000",
        "Sun 2032-02-29 00:00 +0000",
    ]


# -- firing times ----------------------------------------------------------------------------


def test_weekdays_skip_the_weekend() -> None:
    # From Friday 09:00 (exclusive) the next weekday run is on Monday.
    assert upcoming("0 9 * * 1-5", "2026-11-27 09:00", 2) == [
        "Mon 2026-11-30 09:00 +0000",
        "Tue 2026-12-01 09:00 +0000",
    ]


def test_next_after_is_strictly_after() -> None:
    schedule = CronSchedule.parse("*/5 * * * *")
    assert schedule.next_after(at("2026-01-01 10:05")) == at("2026-01-01 10:10")
    assert schedule.next_after(at("2026-01-01 10:04:59")) == at("2026-01-01 10:05")


def test_latest_until_lists_newest_first_within_bounds() -> None:
    schedule = CronSchedule.parse("0 * * * *")
    found = schedule.latest_until(at("2026-01-02 03:00"), at("2026-01-01 22:00"), 10)
    assert found == [
        at(f"2026-01-0{d} {h:02d}:00") for d, h in [(2, 3), (2, 2), (2, 1), (2, 0)]
    ] + [
        at("2026-01-01 23:00"),
        at("2026-01-01 22:00"),
    ]
    assert len(schedule.latest_until(at("2026-01-09 00:00"), at("2026-01-01 00:00"), 5)) == 5


def test_a_local_time_zone_is_followed() -> None:
    assert upcoming("0 9 * * *", "2026-05-31 12:00", 1, "Asia/Tokyo") == [
        "Mon 2026-06-01 09:00 +0900"
    ]
    assert upcoming("0 9 * * *", "2026-06-01 00:00", 1, "Europe/Berlin") == [
        "Mon 2026-06-01 09:00 +0200"
    ]


def test_new_york_spring_forward_fires_fixed_hours_after_the_gap() -> None:
    # 2026-03-08: 02:00 EST jumps to 03:00 EDT; 02:30 does not exist that day.
    assert upcoming("30 2 * * *", "2026-03-07 12:00", 3, "America/New_York") == [
        "Sun 2026-03-08 03:00 -0400",
        "Mon 2026-03-09 02:30 -0400",
        "Tue 2026-03-10 02:30 -0400",
    ]
    # Several times inside the gap fire once; an existing 03:00 firing is the same instant.
    assert upcoming("0,15,45 2-3 * * *", "2026-03-08 06:00", 4, "America/New_York") == [
        "Sun 2026-03-08 03:00 -0400",
        "Sun 2026-03-08 03:15 -0400",
        "Sun 2026-03-08 03:45 -0400",
        "Mon 2026-03-09 02:00 -0400",
    ]


def test_new_york_spring_forward_keeps_hourly_schedules_evenly_spaced() -> None:
    assert upcoming("*/30 * * * *", "2026-03-08 06:00", 4, "America/New_York") == [
        "Sun 2026-03-08 01:30 -0500",
        "Sun 2026-03-08 03:00 -0400",
        "Sun 2026-03-08 03:30 -0400",
        "Sun 2026-03-08 04:00 -0400",
    ]


def test_new_york_fall_back_fires_fixed_hours_once() -> None:
    # 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:30 happens twice.
    assert upcoming("30 1 * * *", "2026-10-31 12:00", 2, "America/New_York") == [
        "Sun 2026-11-01 01:30 -0400",
        "Mon 2026-11-02 01:30 -0500",
    ]


def test_new_york_fall_back_fires_hourly_schedules_in_both_passes() -> None:
    assert upcoming("30 * * * *", "2026-11-01 04:00", 4, "America/New_York") == [
        "Sun 2026-11-01 00:30 -0400",
        "Sun 2026-11-01 01:30 -0400",
        "Sun 2026-11-01 01:30 -0500",
        "Sun 2026-11-01 02:30 -0500",
    ]


def test_berlin_transitions() -> None:
    # 2026-03-29: 02:00 CET jumps to 03:00 CEST. 2026-10-25: 03:00 CEST falls back to 02:00.
    assert upcoming("30 2 * * *", "2026-03-28 12:00", 2, "Europe/Berlin") == [
        "Sun 2026-03-29 03:00 +0200",
        "Mon 2026-03-30 02:30 +0200",
    ]
    assert upcoming("30 2 * * *", "2026-10-24 12:00", 2, "Europe/Berlin") == [
        "Sun 2026-10-25 02:30 +0200",
        "Mon 2026-10-26 02:30 +0100",
    ]
    fall_back = CronSchedule.parse("*/20 * * * *", "Europe/Berlin")
    instants = fall_back.firings_on(dt.date(2026, 10, 25))
    assert len(instants) == 25 * 3  # the repeated hour fires in both passes
    steps = {later - earlier for earlier, later in itertools.pairwise(instants)}
    assert steps == {dt.timedelta(minutes=20)}


def test_many_firings_a_day_cost_little_and_stay_exact() -> None:
    every_minute = CronSchedule.parse("* * * * *", "America/New_York")
    assert len(every_minute.firings_on(dt.date(2026, 6, 1))) == 1440
    assert len(every_minute.firings_on(dt.date(2026, 3, 8))) == 1380  # 23-hour day
    assert len(every_minute.firings_on(dt.date(2026, 11, 1))) == 1500  # 25-hour day


@pytest.mark.parametrize("name", ["", "Mars/Olympus", "../etc/passwd", "/etc/localtime", "EST5"])
def test_unknown_time_zones_are_rejected(name: str) -> None:
    with pytest.raises(TimezoneError, match="not an IANA time zone"):
        canonical_timezone(name)


def test_time_zone_names_are_canonicalised() -> None:
    assert canonical_timezone("utc") == "UTC"
    assert canonical_timezone("america/new_york") == "America/New_York"
