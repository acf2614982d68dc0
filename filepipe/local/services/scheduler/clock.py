"""Runs the stack's schedules (EventBridge Scheduler and scheduled rules) when their expressions say."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from filepipe.local.services.events.delivery import RuleTarget, iso_time
from filepipe.local.stack.model import ScheduleSpec

Submit = Callable[[RuleTarget, dict[str, Any]], None]


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
        now = self._now()
        self._timings = {spec.arn: spec.timing() for spec in schedules}
        self._due: list[tuple[datetime, ScheduleSpec]] = []
        for spec in schedules:
            first = self._timings[spec.arn].next_after(now) if spec.enabled else None
            if first is not None:
                self._due.append((first, spec))
        self._thread = threading.Thread(target=self._run, name="schedules", daemon=True)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    @property
    def pending(self) -> list[tuple[datetime, ScheduleSpec]]:
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
        now = self._now()
        keep = []
        for due, spec in self._due:
            if due > now:
                keep.append((due, spec))
                continue
            self.fire(spec)
            following = self._timings[spec.arn].next_after(max(due, now), previous=due)
            if following is not None:
                keep.append((following, spec))
        self._due = keep

    def _run(self) -> None:
        while self._due and not self._stopped.is_set():
            wait = (min(due for due, _ in self._due) - self._now()).total_seconds()
            if wait > 0 and self._stopped.wait(min(wait, 60.0)):
                return
            self.run_due()
