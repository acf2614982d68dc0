"""List ProcessUpload executions; rebuild one run's states (timing, input, output, error) from its history."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE")
# An execution history holds at most 25,000 events; 1,000 per page keeps the loop short and bounded.
HISTORY_PAGE_SIZE = 1000
MAX_HISTORY_PAGES = 30
MAX_LIST_PAGES = 200


@dataclass(frozen=True)
class ExecutionSummary:
    name: str
    arn: str
    status: str
    started: datetime
    stopped: datetime | None

    @property
    def duration(self) -> float | None:
        return (self.stopped - self.started).total_seconds() if self.stopped else None


@dataclass(eq=False)  # rows are matched by identity: two entries of one state can look alike
class StateRun:
    """One entry into a state: when it ran, what it got and gave, and how it failed if it did."""

    name: str
    type: str
    entered: datetime
    input: str | None = None
    exited: datetime | None = None
    output: str | None = None
    ended: datetime | None = None  # exit, or the end of the run for a state that never exited
    error: str | None = None
    cause: str | None = None
    attempts: int = 0

    @property
    def duration(self) -> float | None:
        end = self.exited or self.ended
        return (end - self.entered).total_seconds() if end else None

    @property
    def retries(self) -> int:
        return max(0, self.attempts - 1)

    @property
    def status(self) -> str:
        if self.exited is not None:
            return "caught" if self.error else "ok"
        if self.error:
            return "failed"
        return "stopped" if self.ended else "running"


@dataclass
class ExecutionDetail:
    summary: ExecutionSummary
    input: str | None
    output: str | None
    error: str | None
    cause: str | None
    redrive_count: int
    states: list[StateRun] = field(default_factory=list)


def execution_arn(state_machine_arn: str, name_or_arn: str) -> str:
    """An execution's ARN from its name (execution ARNs are the state machine's with ``:execution:``)."""
    if name_or_arn.startswith("arn:"):
        return name_or_arn
    return f"{state_machine_arn.replace(':stateMachine:', ':execution:', 1)}:{name_or_arn}"


def belongs_to_file(name: str, file_id: str) -> bool:
    """Runs of one file: the first is named after its id, replays ``{fileId}-replay-{n}``."""
    return name == file_id or name.startswith(f"{file_id}-")


def _summary(item: dict[str, Any]) -> ExecutionSummary:
    return ExecutionSummary(
        name=item["name"],
        arn=item["executionArn"],
        status=item["status"],
        started=item["startDate"],
        stopped=item.get("stopDate"),
    )


def iter_executions(stepfunctions: Any, state_machine_arn: str, status: str | None = None) -> Iterator[Any]:
    kwargs: dict[str, Any] = {"stateMachineArn": state_machine_arn, "maxResults": 100}
    if status:
        kwargs["statusFilter"] = status
    seen: set[str] = set()
    for _ in range(MAX_LIST_PAGES):
        page = stepfunctions.list_executions(**kwargs)
        for item in page.get("executions", []):
            if item["executionArn"] not in seen:
                seen.add(item["executionArn"])
                yield item
        token = page.get("nextToken")
        if not token:
            return
        kwargs["nextToken"] = token


def list_executions(
    stepfunctions: Any,
    state_machine_arn: str,
    status: str | None = None,
    file_id: str | None = None,
    limit: int | None = None,
) -> list[ExecutionSummary]:
    """Newest first, optionally only one status and one file's runs."""
    found = [
        _summary(item)
        for item in iter_executions(stepfunctions, state_machine_arn, status)
        if file_id is None or belongs_to_file(item["name"], file_id)
    ]
    found.sort(key=lambda execution: execution.started, reverse=True)
    return found[:limit] if limit else found


def execution_history(stepfunctions: Any, arn: str) -> list[dict[str, Any]]:
    """Every event, oldest first. Pages are followed by hand and de-duplicated by event id: moto
    ignores paging and answers the whole history to every call."""
    events: dict[int, dict[str, Any]] = {}
    kwargs: dict[str, Any] = {"executionArn": arn, "maxResults": HISTORY_PAGE_SIZE}
    for _ in range(MAX_HISTORY_PAGES):
        page = stepfunctions.get_execution_history(**kwargs)
        before = len(events)
        for event in page.get("events", []):
            events.setdefault(int(event["id"]), event)
        token = page.get("nextToken")
        if not token or len(events) == before:
            break
        kwargs["nextToken"] = token
    return [events[key] for key in sorted(events)]


def _details(event: dict[str, Any]) -> dict[str, Any]:
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            return value
    return {}


_COMPOSITE_PREFIXES = ("ParallelState", "MapState", "MapRun")


def states_from_history(events: list[dict[str, Any]]) -> list[StateRun]:
    """One row per state entry, in the order states were entered.

    Task events find their state through ``previousEventId`` (each event points at the one before it in
    the same branch), so parallel branches do not mix; exits are matched to entries by state name.
    """
    rows: list[StateRun] = []
    owner: dict[int, StateRun] = {}
    open_rows: list[StateRun] = []
    for event in events:
        kind = str(event["type"])
        details = _details(event)
        event_id = int(event["id"])
        if kind.endswith("StateEntered"):
            row = StateRun(
                name=str(details.get("name", "?")),
                type=kind.removesuffix("StateEntered"),
                entered=event["timestamp"],
                input=details.get("input"),
            )
            rows.append(row)
            open_rows.append(row)
            owner[event_id] = row
            continue
        if kind.endswith("StateExited"):
            name = details.get("name")
            row_or_none = next((r for r in open_rows if r.name == name), None)
            if row_or_none is not None:
                row_or_none.exited = event["timestamp"]
                row_or_none.output = details.get("output")
                open_rows.remove(row_or_none)
                owner[event_id] = row_or_none
            continue
        if kind.startswith("Execution"):
            _end_of_run(event, details, owner, open_rows)
            continue
        row_or_none = _owner_of(event, kind, owner, open_rows)
        if row_or_none is None:
            continue
        owner[event_id] = row_or_none
        if kind.endswith("Scheduled"):
            row_or_none.attempts += 1
        if "error" in details or "cause" in details:
            row_or_none.error = details.get("error") or row_or_none.error or "Error"
            row_or_none.cause = details.get("cause")
        elif kind.endswith("Succeeded"):
            row_or_none.error = row_or_none.cause = None  # a later attempt recovered
    return rows


def _end_of_run(
    event: dict[str, Any], details: dict[str, Any], owner: dict[int, StateRun], open_rows: list[StateRun]
) -> None:
    """An Execution* event: states still open stopped here, and the run's error is theirs."""
    if event["type"] == "ExecutionStarted":
        return
    if event["type"] == "ExecutionRedriven":  # the states left open belong to the attempt before it
        open_rows.clear()
        return
    for still_open in open_rows:
        still_open.ended = event["timestamp"]
    if "error" not in details and "cause" not in details:
        return
    culprit = owner.get(int(event.get("previousEventId") or 0))
    if culprit is None or culprit not in open_rows:
        culprit = open_rows[-1] if open_rows else None
    if culprit is not None and culprit.error is None:
        culprit.error = details.get("error") or "Error"
        culprit.cause = details.get("cause")


def _owner_of(
    event: dict[str, Any], kind: str, owner: dict[int, StateRun], open_rows: list[StateRun]
) -> StateRun | None:
    if kind.startswith(_COMPOSITE_PREFIXES):
        composite = kind.split("State")[0] if "State" in kind else "Map"
        for row in reversed(open_rows):
            if row.type == composite:
                return row
    previous = owner.get(int(event.get("previousEventId") or 0))
    if previous is not None:
        return previous
    return open_rows[-1] if open_rows else None


def describe(stepfunctions: Any, state_machine_arn: str, name_or_arn: str) -> ExecutionDetail:
    arn = execution_arn(state_machine_arn, name_or_arn)
    execution = stepfunctions.describe_execution(executionArn=arn)
    states = states_from_history(execution_history(stepfunctions, arn))
    return ExecutionDetail(
        summary=_summary(execution),
        input=execution.get("input"),
        output=execution.get("output"),
        error=execution.get("error"),
        cause=execution.get("cause"),
        redrive_count=int(execution.get("redriveCount") or 0),
        states=states,
    )


def last_state(stepfunctions: Any, arn: str) -> StateRun | None:
    """The state the run was in when it ended (or is in now)."""
    states = states_from_history(execution_history(stepfunctions, arn))
    return states[-1] if states else None
