"""Schedule expressions as EventBridge reads them: rate, at and cron, time zones, start and end dates."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from filepipe.local.stack.schedules import (
    ScheduleError,
    ScheduleTiming,
    interval_seconds,
    one_time,
)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def next_run(expression: str, after: str, timezone: str | None = None) -> datetime | None:
    return ScheduleTiming.parse(expression, timezone).next_after(utc(after))


def test_rate_and_at_expressions() -> None:
    assert interval_seconds("rate(3 hours)") == 3 * 3600
    assert interval_seconds("rate(1 minute)") == 60
    assert interval_seconds("cron(0 * * * ? *)") is None
    assert one_time("at(2030-01-02T03:04:05)") == utc("2030-01-02T03:04:05")
    assert one_time("rate(1 day)") is None


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("cron(0 12 * * ? *)", "2026-11-22T13:00:00", "2026-11-23T12:00:00"),
        ("cron(0/15 * * * ? *)", "2026-11-22T10:07:30", "2026-11-22T10:15:00"),
        ("cron(0/15 * * * ? *)", "2026-11-22T10:15:00", "2026-11-22T10:30:00"),  # strictly after
        ("cron(5,35 8-9 * * ? *)", "2026-11-22T09:40:00", "2026-11-23T08:05:00"),
        ("cron(0 18 L * ? *)", "2028-02-10T00:00:00", "2028-02-29T18:00:00"),  # a leap year's last day
        ("cron(0 9 ? * MON-FRI *)", "2026-11-21T10:00:00", "2026-11-23T09:00:00"),  # Saturday -> Monday
        ("cron(0 9 ? * 2-6 *)", "2026-11-21T10:00:00", "2026-11-23T09:00:00"),  # the same days by number
        ("cron(0 10 ? * 6L *)", "2026-11-01T00:00:00", "2026-11-27T10:00:00"),  # the last Friday
        ("cron(0 8 ? * 3#2 *)", "2026-12-01T09:00:00", "2026-12-08T08:00:00"),  # the second Tuesday
        ("cron(0 8 15W * ? *)", "2026-08-01T00:00:00", "2026-08-14T08:00:00"),  # Saturday 15th -> Friday
        ("cron(0 8 1W * ? *)", "2026-07-31T09:00:00", "2026-08-03T08:00:00"),  # Saturday 1st -> Monday 3rd
        ("cron(0 0 1 JAN,JUL ? 2027-2028)", "2026-11-22T00:00:00", "2027-01-01T00:00:00"),
        ("cron(0 0 29 2 ? *)", "2026-03-01T00:00:00", "2028-02-29T00:00:00"),
    ],
)
def test_cron_next_run(expression: str, after: str, expected: str) -> None:
    assert next_run(expression, after) == utc(expected)


def test_a_cron_past_its_last_year_or_on_no_real_day_never_runs_again() -> None:
    assert next_run("cron(0 0 1 1 ? 2027)", "2027-06-01T00:00:00") is None
    assert next_run("cron(0 0 30 2 ? *)", "2026-01-01T00:00:00") is None


def test_a_schedule_runs_in_its_time_zone() -> None:
    # 09:00 in Berlin is 08:00 UTC in winter (CET) and 07:00 UTC in summer (CEST).
    assert next_run("cron(0 9 * * ? *)", "2026-11-22T00:00:00", "Europe/Berlin") == utc("2026-11-22T08:00:00")
    assert next_run("cron(0 9 * * ? *)", "2026-07-01T00:00:00", "Europe/Berlin") == utc("2026-07-01T07:00:00")
    assert next_run("at(2026-12-24T18:00:00)", "2026-11-22T00:00:00", "America/New_York") == utc(
        "2026-12-24T23:00:00"
    )


def test_start_and_end_dates_bound_the_runs() -> None:
    # A rate counts from its creation (12:00); the first run is the first one at or after the start date.
    timing = ScheduleTiming.parse("rate(1 hour)", None, "2026-11-23T00:30:00Z", "2026-11-23T02:00:00Z")
    first = timing.next_after(utc("2026-11-22T12:00:00"))
    assert first == utc("2026-11-23T01:00:00")
    assert timing.next_after(first, previous=first) is None  # runs happen before the end date, not at it
    cron = ScheduleTiming.parse("cron(0 12 * * ? *)", None, "2026-12-01T00:00:00Z")
    assert cron.next_after(utc("2026-11-22T00:00:00")) == utc("2026-12-01T12:00:00")


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("cron(0 12 * * ?)", "has 5 fields, not 6"),
        ("cron(0 12 * * * *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 12 ? * ? *)", "exactly one of day-of-month and day-of-week"),
        ("cron(60 12 * * ? *)", "minutes: 60 is outside 0-59"),
        ("cron(0 12 * FOO ? *)", "month: 'FOO' is not a number or a name"),
        ("cron(0 20-8 * * ? *)", "runs backwards"),
        ("cron(0/0 * * * ? *)", "step"),
        ("cron(0 8 ? * 3#6 *)", "occurrence"),
        ("every day", "not a rate\\(\\), at\\(\\) or cron\\(\\) expression"),
    ],
)
def test_expressions_eventbridge_refuses_are_refused_with_the_reason(expression: str, reason: str) -> None:
    with pytest.raises(ScheduleError, match=reason):
        ScheduleTiming.parse(expression)


def test_bad_time_zones_and_dates_are_refused() -> None:
    with pytest.raises(ScheduleError, match="unknown time zone 'Mars/Olympus'"):
        ScheduleTiming.parse("rate(1 hour)", "Mars/Olympus")
    with pytest.raises(ScheduleError, match="not an ISO 8601 time"):
        ScheduleTiming.parse("rate(1 hour)", None, "tomorrow")
    with pytest.raises(ScheduleError, match="end date is not after the start date"):
        ScheduleTiming.parse("rate(1 hour)", None, "2026-12-01T00:00:00Z", "2026-11-01T00:00:00Z")
