"""Runs the stack's schedules (EventBridge Scheduler and scheduled rules): rate() repeats, at() fires once."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from filepipe.local.events import RuleTarget, iso_time
from filepipe.provision import ScheduleSpec

Submit = Callable[[RuleTarget, dict[str, Any]], None]

_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def interval_seconds(expression: str) -> int | None:
    """Seconds between runs of a rate() expression; None for anything else."""
    match = _RATE.match(expression.strip())
    if match is None:
        return None
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


def one_time(expression: str) -> datetime | None:
    match = _AT.match(expression.strip())
    return datetime.fromisoformat(match.group(1)).replace(tzinfo=UTC) if match else None


class Scheduler:
    """Fires due schedules into the event delivery (which applies their retry policy and DLQ)."""

    def __init__(
        self,
        schedules: list[ScheduleSpec],
        submit: Submit,
        account: str,
        region: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._submit = submit
        self._account = account
        self._region = region
        self._clock = clock
        self._stopped = threading.Event()
        now = clock()
        self._due: list[tuple[float, ScheduleSpec]] = []
        for spec in schedules:
            if not spec.enabled:
                continue
            interval = interval_seconds(spec.expression)
            at = one_time(spec.expression)
            if interval is not None:
                self._due.append((now + interval, spec))
            elif at is not None and at.timestamp() > now:
                self._due.append((at.timestamp(), spec))
        self._thread = threading.Thread(target=self._run, name="schedules", daemon=True)

    @property
    def pending(self) -> list[tuple[float, ScheduleSpec]]:
        return sorted(self._due, key=lambda item: item[0])

    def start(self) -> None:
        if self._due:
            self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def fire(self, spec: ScheduleSpec) -> None:
        if spec.scheduled_rule:
            event = {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": self._account,
                "time": iso_time(self._clock()),
                "region": self._region,
                "resources": [spec.arn],
                "detail": {},
            }
        else:
            event = {}
        self._submit(RuleTarget(spec.name, spec.arn, spec.target), event)

    def run_due(self) -> None:
        now = self._clock()
        keep = []
        for due, spec in self._due:
            if due > now:
                keep.append((due, spec))
                continue
            self.fire(spec)
            interval = interval_seconds(spec.expression)
            if interval is not None:
                keep.append((due + interval, spec))
        self._due = keep

    def _run(self) -> None:
        while self._due and not self._stopped.is_set():
            wait = min(due for due, _ in self._due) - self._clock()
            if wait > 0 and self._stopped.wait(min(wait, 60.0)):
                return
            self.run_due()
