"""Scheduler rules a deploy meets: expressions EventBridge accepts, start dates, time zones run locally."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from botocore.exceptions import ClientError

from filepipe.local.stack.model import Stack
from tests.local.provisioning import provision_text

SCHEDULES = """
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Queue:
    Type: AWS::SQS::Queue
  Nightly:
    Type: AWS::Events::Rule
    Properties:
      ScheduleExpression: {rule}
      Targets: [{{Id: queue, Arn: !GetAtt Queue.Arn}}]
  Weekdays:
    Type: AWS::Scheduler::Schedule
    Properties:
      ScheduleExpression: cron(30 9 ? * MON-FRI *)
      ScheduleExpressionTimezone: Europe/Berlin
      StartDate: "{start_date}"
      FlexibleTimeWindow: {{Mode: "OFF"}}
      Target: {{Arn: !GetAtt Queue.Arn, RoleArn: arn:aws:iam::123456789012:role/scheduler}}
"""


def _next_monday(days_ahead: int) -> datetime:
    """Midnight UTC of the first Monday at least ``days_ahead`` days from now: a start date AWS accepts."""
    day = (datetime.now(UTC) + timedelta(days=days_ahead)).replace(hour=0, minute=0, second=0, microsecond=0)
    return day + timedelta(days=-day.weekday() % 7)


def _provision_schedules(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    rule: str,
    start: datetime | None = None,
    stack_name: str = "timed",
) -> Stack:
    start = start or _next_monday(days_ahead=7)
    text = SCHEDULES.format(rule=rule, start_date=start.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return provision_text(tmp_path, monkeypatch, text, stack_name)


def test_cron_schedules_run_locally_in_their_time_zone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monday = _next_monday(days_ahead=7)
    stack = _provision_schedules(tmp_path, monkeypatch, "cron(0 2 * * ? *)", start=monday)
    assert not [w for w in stack.warnings if "cron" in w or "schedule" in w.lower()]
    weekdays = stack.schedules["Weekdays"]
    assert (weekdays.timezone, weekdays.start_date) == (
        "Europe/Berlin",
        monday.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    # Nothing runs before the start date: the first run is that Monday, 09:30 in Berlin.
    first = weekdays.timing().next_after(monday - timedelta(days=3))
    berlin = ZoneInfo("Europe/Berlin")
    assert first == datetime.combine(monday.date(), time(9, 30), tzinfo=berlin).astimezone(UTC)
    nightly = stack.schedules["Nightly/queue"]
    assert nightly.timing().next_after(datetime(2026, 11, 22, 3, tzinfo=UTC)) == datetime(
        2026, 11, 23, 2, tzinfo=UTC
    )


def test_a_schedule_eventbridge_would_refuse_stops_the_deployment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(
        ValueError, match=r"Nightly: invalid schedule 'cron\(0 2 \* \* \* \*\)': exactly one of"
    ):
        _provision_schedules(tmp_path, monkeypatch, "cron(0 2 * * * *)")


def test_a_start_date_in_the_past_stops_the_deployment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # EventBridge Scheduler refuses a StartDate more than 5 minutes in the past, as a deploy would.
    yesterday = datetime.now(UTC) - timedelta(days=1)
    with pytest.raises(ClientError) as refused:
        _provision_schedules(tmp_path, monkeypatch, "cron(0 2 * * ? *)", start=yesterday, stack_name="late")
    assert refused.value.response["Error"]["Code"] == "ValidationException"
