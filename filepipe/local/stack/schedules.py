"""Schedule expressions as EventBridge reads them (rate, at, cron) and the next run after a moment."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_EXPRESSION = re.compile(r"^cron\((?P<fields>[^()]*)\)$")
_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_MONTHS = {name: index + 1 for index, name in enumerate(_MONTH_NAMES)}
# EventBridge numbers the days of the week from Sunday (1) to Saturday (7).
_WEEKDAYS = {name: index + 1 for index, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}
LAST_YEAR = 2199


class ScheduleError(ValueError):
    """A schedule EventBridge would refuse; the message says which part is wrong."""


def interval_seconds(expression: str) -> int | None:
    """Seconds between runs of a rate() expression; None for anything else."""
    match = _RATE.match(expression.strip())
    if match is None:
        return None
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


def one_time(expression: str, zone: tzinfo = UTC) -> datetime | None:
    """The moment of an at() expression, read in ``zone``; None for anything else."""
    match = _AT.match(expression.strip())
    return datetime.fromisoformat(match.group(1)).replace(tzinfo=zone) if match else None


@dataclass(frozen=True)
class _DayOfMonth:
    days: frozenset[int]
    last: bool = False  # L: the month's last day
    weekday_near: int | None = None  # nW: the weekday nearest day n, within the month
    last_weekday: bool = False  # LW: the month's last weekday

    def matches(self, year: int, month: int, day: int) -> bool:
        length = calendar.monthrange(year, month)[1]
        if self.last:
            return day == length
        if self.last_weekday:
            return day == _nearest_weekday(year, month, length, length)
        if self.weekday_near is not None:
            return day == _nearest_weekday(year, month, min(self.weekday_near, length), length)
        return day in self.days


@dataclass(frozen=True)
class _DayOfWeek:
    days: frozenset[int]  # 1 = Sunday
    last_of_month: int | None = None  # nL: the month's last such weekday
    nth: tuple[int, int] | None = None  # d#n: the n-th such weekday of the month

    def matches(self, year: int, month: int, day: int) -> bool:
        weekday = _weekday(year, month, day)
        length = calendar.monthrange(year, month)[1]
        if self.last_of_month is not None:
            return weekday == self.last_of_month and day + 7 > length
        if self.nth is not None:
            wanted, occurrence = self.nth
            return weekday == wanted and (day - 1) // 7 + 1 == occurrence
        return weekday in self.days


@dataclass(frozen=True)
class CronExpression:
    """``cron(Minutes Hours Day-of-month Month Day-of-week Year)``, as EventBridge reads it."""

    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    day_of_month: _DayOfMonth | None  # None: "?"
    months: frozenset[int]
    day_of_week: _DayOfWeek | None  # None: "?"
    years: frozenset[int]

    @classmethod
    def parse(cls, text: str) -> CronExpression:
        match = _EXPRESSION.match(text.strip())
        if match is None:
            raise ScheduleError("not a rate(), at() or cron() expression")
        fields = match.group("fields").split()
        if len(fields) != 6:
            raise ScheduleError(f"cron() has {len(fields)} fields, not 6 (minutes to year)")
        minutes, hours, dom, month, dow, year = fields
        if (dom == "?") == (dow == "?"):
            raise ScheduleError("exactly one of day-of-month and day-of-week must be '?'")
        return cls(
            text=text,
            minutes=tuple(sorted(_values(minutes, 0, 59, "minutes"))),
            hours=tuple(sorted(_values(hours, 0, 23, "hours"))),
            day_of_month=None if dom == "?" else _day_of_month(dom),
            months=frozenset(_values(month, 1, 12, "month", _MONTHS)),
            day_of_week=None if dow == "?" else _day_of_week(dow),
            years=frozenset(_values(year, 1970, LAST_YEAR, "year")),
        )

    def matches_day(self, year: int, month: int, day: int) -> bool:
        if year not in self.years or month not in self.months:
            return False
        if self.day_of_month is not None:
            return self.day_of_month.matches(year, month, day)
        return self.day_of_week is not None and self.day_of_week.matches(year, month, day)

    def next_after(self, moment: datetime, zone: tzinfo) -> datetime | None:
        """The first run strictly after ``moment``, in wall-clock time of ``zone``; None if there is none."""
        local = moment.astimezone(zone).replace(second=0, microsecond=0, tzinfo=None) + timedelta(minutes=1)
        start_day = local.date()
        for year in sorted(y for y in self.years if y >= start_day.year):
            for month in sorted(m for m in self.months if (year, m) >= (start_day.year, start_day.month)):
                first = start_day.day if (year, month) == (start_day.year, start_day.month) else 1
                for day in range(first, calendar.monthrange(year, month)[1] + 1):
                    if not self.matches_day(year, month, day):
                        continue
                    same_day = (year, month, day) == (start_day.year, start_day.month, start_day.day)
                    for hour in self.hours:
                        for minute in self.minutes:
                            if same_day and (hour, minute) < (local.hour, local.minute):
                                continue
                            return datetime(year, month, day, hour, minute, tzinfo=zone)
        return None


def _weekday(year: int, month: int, day: int) -> int:
    return (calendar.weekday(year, month, day) + 1) % 7 + 1  # Monday 0 -> 2, Sunday 6 -> 1


def _nearest_weekday(year: int, month: int, day: int, length: int) -> int:
    weekday = calendar.weekday(year, month, day)  # Monday 0 .. Sunday 6
    if weekday == 5:  # Saturday: the Friday before, or the Monday after on the 1st
        return day - 1 if day > 1 else day + 2
    if weekday == 6:  # Sunday: the Monday after, or the Friday before on the last day
        return day + 1 if day < length else day - 2
    return day


def _number(text: str, names: dict[str, int] | None, field: str) -> int:
    upper = text.upper()
    if names and upper in names:
        return names[upper]
    if not text.isdigit():
        raise ScheduleError(f"{field}: {text!r} is not a number{' or a name' if names else ''}")
    return int(text)


def _values(text: str, low: int, high: int, field: str, names: dict[str, int] | None = None) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        span, _, step_text = part.partition("/")
        step = _number(step_text, None, field) if step_text else 1
        if step < 1:
            raise ScheduleError(f"{field}: the step in {part!r} must be at least 1")
        if span == "*":
            first, last = low, high
        elif "-" in span:
            first_text, _, last_text = span.partition("-")
            first, last = _number(first_text, names, field), _number(last_text, names, field)
        else:
            first = _number(span, names, field)
            last = high if step_text else first
        for value in (first, last):
            if not low <= value <= high:
                raise ScheduleError(f"{field}: {value} is outside {low}-{high}")
        if first > last:
            raise ScheduleError(f"{field}: the range {span!r} runs backwards")
        values.update(range(first, last + 1, step))
    return values


def _day_of_month(text: str) -> _DayOfMonth:
    upper = text.upper()
    if upper == "L":
        return _DayOfMonth(frozenset(), last=True)
    if upper == "LW":
        return _DayOfMonth(frozenset(), last_weekday=True)
    if upper.endswith("W"):
        day = _number(upper[:-1], None, "day-of-month")
        if not 1 <= day <= 31:
            raise ScheduleError(f"day-of-month: {day} is outside 1-31")
        return _DayOfMonth(frozenset(), weekday_near=day)
    return _DayOfMonth(frozenset(_values(text, 1, 31, "day-of-month")))


def _day_of_week(text: str) -> _DayOfWeek:
    upper = text.upper()
    if upper == "L":
        return _DayOfWeek(frozenset({7}))  # the week's last day, Saturday
    if upper.endswith("L"):
        return _DayOfWeek(frozenset(), last_of_month=_weekday_number(upper[:-1]))
    if "#" in upper:
        day_text, _, occurrence_text = upper.partition("#")
        occurrence = _number(occurrence_text, None, "day-of-week")
        if not 1 <= occurrence <= 5:
            raise ScheduleError(f"day-of-week: the occurrence in {text!r} must be 1-5")
        return _DayOfWeek(frozenset(), nth=(_weekday_number(day_text), occurrence))
    return _DayOfWeek(frozenset(_values(text, 1, 7, "day-of-week", _WEEKDAYS)))


def _weekday_number(text: str) -> int:
    day = _number(text, _WEEKDAYS, "day-of-week")
    if not 1 <= day <= 7:
        raise ScheduleError(f"day-of-week: {day} is outside 1-7")
    return day


@dataclass(frozen=True)
class ScheduleTiming:
    """When a schedule runs: its expression in its time zone, within its start and end dates."""

    expression: str
    zone: tzinfo
    start: datetime | None = None
    end: datetime | None = None

    @classmethod
    def parse(
        cls, expression: str, timezone: str | None = None, start: str | None = None, end: str | None = None
    ) -> ScheduleTiming:
        try:
            zone: tzinfo = ZoneInfo(timezone) if timezone else UTC
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ScheduleError(f"unknown time zone {timezone!r}") from error
        timing = cls(expression.strip(), zone, _date(start, "start date"), _date(end, "end date"))
        if timing.start and timing.end and timing.end <= timing.start:
            raise ScheduleError("the end date is not after the start date")
        if interval_seconds(timing.expression) is None and one_time(timing.expression) is None:
            timing._cron()  # raises with the reason when it is not a valid cron() either
        return timing

    def _cron(self) -> CronExpression:
        return CronExpression.parse(self.expression)

    def next_after(self, moment: datetime, previous: datetime | None = None) -> datetime | None:
        """The run after ``moment`` (a rate() counts from ``previous``, its last run, when there was one)."""
        earliest = max(moment, self.start) if self.start else moment
        interval = interval_seconds(self.expression)
        candidate: datetime | None
        if interval is not None:
            step = timedelta(seconds=interval)
            candidate = (previous or moment) + step
            if candidate < earliest:
                candidate += step * -(-(earliest - candidate) // step)
        elif (at := one_time(self.expression, self.zone)) is not None:
            candidate = at if previous is None and at > earliest else None
        else:
            candidate = self._cron().next_after(earliest, self.zone)
        if candidate is None or (self.end is not None and candidate >= self.end):
            return None
        return candidate.astimezone(UTC)


def _date(text: str | None, name: str) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError as error:
        raise ScheduleError(f"the {name} {text!r} is not an ISO 8601 time") from error
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
