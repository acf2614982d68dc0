"""Rebuilding a run's states from its execution history, paging by hand, and listing executions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from filepipe.ops.executions import (
    belongs_to_file,
    describe,
    execution_arn,
    execution_history,
    list_executions,
    states_from_history,
)

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:filepipe-ProcessUpload"
FILE_ID = "01JD7W3Q9X4M2K8N6P0R5T1V3Z"


class History:
    """Builds events the way Step Functions numbers them: each points at the one before in its branch."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def add(self, kind: str, ms: int, previous: int | None = None, **details: Any) -> int:
        event_id = len(self.events) + 1
        event: dict[str, Any] = {
            "id": event_id,
            "previousEventId": event_id - 1 if previous is None else previous,
            "type": kind,
            "timestamp": T0 + timedelta(milliseconds=ms),
        }
        if details:
            key = {
                "Entered": "stateEnteredEventDetails",
                "Exited": "stateExitedEventDetails",
            }.get(kind[-7:], f"{kind[0].lower()}{kind[1:]}EventDetails")
            event[key] = details
        self.events.append(event)
        return event_id


def test_a_retried_task_counts_its_attempts_and_keeps_no_error_once_it_succeeds() -> None:
    h = History()
    h.add("ExecutionStarted", 0, input="{}")
    h.add("TaskStateEntered", 1, name="Validate file", input='{"a":1}')
    h.add("TaskScheduled", 2, resource="invoke")
    h.add("TaskStarted", 3)
    h.add("TaskFailed", 10, error="Lambda.TooManyRequestsException", cause="slow down")
    h.add("TaskScheduled", 1010, resource="invoke")
    h.add("TaskStarted", 1011)
    h.add("TaskSucceeded", 1100, output="{}")
    h.add("TaskStateExited", 1101, name="Validate file", output='{"a":2}')
    h.add("ExecutionSucceeded", 1102, output='{"a":2}')

    [state] = states_from_history(h.events)

    assert (state.name, state.type, state.status) == ("Validate file", "Task", "ok")
    assert (state.attempts, state.retries) == (2, 1)
    assert state.error is None
    assert state.duration == 1.1
    assert (state.input, state.output) == ('{"a":1}', '{"a":2}')


def test_a_caught_error_and_the_fail_state_both_show_the_error() -> None:
    h = History()
    h.add("ExecutionStarted", 0)
    h.add("TaskStateEntered", 1, name="Scan for malware", input="{}")
    h.add("TaskScheduled", 2)
    h.add("TaskStarted", 3)
    h.add("TaskFailed", 50, error="ScannerUnavailable", cause="no clamd")
    h.add("TaskStateExited", 51, name="Scan for malware", output='{"failure":{}}')
    fail = h.add("FailStateEntered", 52, name="Processing failed", input='{"failure":{}}')
    h.add("ExecutionFailed", 55, previous=fail, error="ScannerUnavailable", cause="no clamd")

    scan, failed = states_from_history(h.events)

    assert (scan.status, scan.error, scan.cause, scan.retries) == (
        "caught",
        "ScannerUnavailable",
        "no clamd",
        0,
    )
    assert (failed.type, failed.status, failed.error) == ("Fail", "failed", "ScannerUnavailable")
    assert failed.duration == 0.003  # from entering it to the end of the run


def test_parallel_branches_interleaved_keep_their_own_events() -> None:
    h = History()
    h.add("ExecutionStarted", 0)
    parallel = h.add("ParallelStateEntered", 1, name="Make thumbnails and metadata", input="{}")
    started = h.add("ParallelStateStarted", 2)
    thumbs = h.add("TaskStateEntered", 3, previous=started, name="Make thumbnails", input="{}")
    meta = h.add("TaskStateEntered", 4, previous=started, name="Extract metadata", input="{}")
    thumbs_scheduled = h.add("TaskScheduled", 5, previous=thumbs)
    meta_scheduled = h.add("TaskScheduled", 6, previous=meta)
    meta_failed = h.add("TaskFailed", 7, previous=meta_scheduled, error="Lambda.ServiceException", cause="x")
    meta_retry = h.add("TaskScheduled", 1007, previous=meta_failed)
    thumbs_done = h.add("TaskSucceeded", 1200, previous=thumbs_scheduled)
    thumbs_exit = h.add("TaskStateExited", 1201, previous=thumbs_done, name="Make thumbnails", output="{}")
    meta_done = h.add("TaskSucceeded", 1300, previous=meta_retry)
    h.add("TaskStateExited", 1301, previous=meta_done, name="Extract metadata", output="{}")
    h.add("ParallelStateSucceeded", 1302, previous=thumbs_exit)
    h.add("ParallelStateExited", 1303, name="Make thumbnails and metadata", output="[{},{}]")
    assert parallel == 2

    rows = {row.name: row for row in states_from_history(h.events)}

    assert list(rows) == ["Make thumbnails and metadata", "Make thumbnails", "Extract metadata"]
    assert (rows["Make thumbnails"].retries, rows["Make thumbnails"].duration) == (0, 1.198)
    assert (rows["Extract metadata"].retries, rows["Extract metadata"].error) == (1, None)
    assert rows["Make thumbnails and metadata"].status == "ok"
    assert rows["Make thumbnails and metadata"].duration == 1.302


def test_a_run_stopped_inside_a_state_leaves_it_stopped_at_the_end_of_the_run() -> None:
    h = History()
    h.add("ExecutionStarted", 0)
    h.add("TaskStateEntered", 1, name="Scan for malware", input="{}")
    h.add("TaskScheduled", 2)
    h.add("ExecutionAborted", 500)

    [scan] = states_from_history(h.events)

    assert (scan.status, scan.duration, scan.error) == ("stopped", 0.499, None)


def test_a_timed_out_run_blames_the_state_it_was_in() -> None:
    h = History()
    h.add("ExecutionStarted", 0)
    h.add("TaskStateEntered", 1, name="Promote original", input="{}")
    h.add("TaskScheduled", 2)
    h.add("ExecutionTimedOut", 9000, error="States.Timeout", cause="too long")

    [promote] = states_from_history(h.events)

    assert (promote.status, promote.error) == ("failed", "States.Timeout")


def test_a_state_still_running_has_no_duration_yet() -> None:
    h = History()
    h.add("ExecutionStarted", 0)
    h.add("TaskStateEntered", 1, name="Scan for malware", input="{}")
    h.add("TaskScheduled", 2)

    [scan] = states_from_history(h.events)

    assert (scan.status, scan.duration) == ("running", None)


class PagedHistory:
    """get_execution_history that pages for real, or (``ignores_paging``) like moto, whole every time."""

    def __init__(self, events: list[dict[str, Any]], ignores_paging: bool) -> None:
        self.events = events
        self.ignores_paging = ignores_paging
        self.calls = 0

    def get_execution_history(
        self, executionArn: str, maxResults: int, nextToken: str = "0"
    ) -> dict[str, Any]:
        self.calls += 1
        if self.ignores_paging:
            return {"events": self.events, "nextToken": "more"}
        start = int(nextToken)
        page: dict[str, Any] = {"events": self.events[start : start + 2]}
        if start + 2 < len(self.events):
            page["nextToken"] = str(start + 2)
        return page


def _events(count: int) -> list[dict[str, Any]]:
    return [{"id": i, "type": "PassStateEntered", "timestamp": T0} for i in range(1, count + 1)]


def test_history_pages_are_followed_to_the_end() -> None:
    client = PagedHistory(_events(5), ignores_paging=False)
    assert [e["id"] for e in execution_history(client, "arn")] == [1, 2, 3, 4, 5]
    assert client.calls == 3


def test_a_service_that_ignores_paging_is_read_once_more_then_left() -> None:
    client = PagedHistory(_events(5), ignores_paging=True)
    assert [e["id"] for e in execution_history(client, "arn")] == [1, 2, 3, 4, 5]
    assert client.calls == 2  # the second answer adds nothing new: stop


class Executions:
    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items
        self.filters: list[str | None] = []

    def list_executions(
        self, stateMachineArn: str, maxResults: int, statusFilter: str | None = None, nextToken: str = "0"
    ) -> dict[str, Any]:
        self.filters.append(statusFilter)
        matching = [i for i in self.items if statusFilter is None or i["status"] == statusFilter]
        start = int(nextToken)
        page: dict[str, Any] = {"executions": matching[start : start + 2]}
        if start + 2 < len(matching):
            page["nextToken"] = str(start + 2)
        return page


def _run(name: str, status: str, minute: int) -> dict[str, Any]:
    return {
        "name": name,
        "executionArn": execution_arn(MACHINE, name),
        "status": status,
        "startDate": T0 + timedelta(minutes=minute),
        **({"stopDate": T0 + timedelta(minutes=minute, seconds=3)} if status != "RUNNING" else {}),
    }


def test_listing_is_newest_first_across_pages_and_filters_by_file_and_status() -> None:
    other = "01JD7W3Q9X4M2K8N6P0R5T1V40"
    client = Executions(
        [
            _run(FILE_ID, "FAILED", 0),
            _run(other, "SUCCEEDED", 1),
            _run(f"{FILE_ID}-replay-1", "FAILED", 2),
            _run(f"{FILE_ID}-replay-2", "SUCCEEDED", 3),
        ]
    )

    assert [e.name for e in list_executions(client, MACHINE)] == [
        f"{FILE_ID}-replay-2",
        f"{FILE_ID}-replay-1",
        other,
        FILE_ID,
    ]
    assert [e.name for e in list_executions(client, MACHINE, file_id=FILE_ID, status="FAILED")] == [
        f"{FILE_ID}-replay-1",
        FILE_ID,
    ]
    assert client.filters[-1] == "FAILED"
    assert [e.name for e in list_executions(client, MACHINE, limit=1)] == [f"{FILE_ID}-replay-2"]
    assert list_executions(client, MACHINE, file_id=other)[0].duration == 3


def test_a_name_becomes_the_execution_arn_and_an_arn_stays_as_it_is() -> None:
    arn = "arn:aws:states:us-east-1:123456789012:execution:filepipe-ProcessUpload:" + FILE_ID
    assert execution_arn(MACHINE, FILE_ID) == arn
    assert execution_arn(MACHINE, arn) == arn


def test_a_file_owns_its_first_run_and_its_replays_only() -> None:
    assert belongs_to_file(FILE_ID, FILE_ID)
    assert belongs_to_file(f"{FILE_ID}-replay-3", FILE_ID)
    assert not belongs_to_file(f"{FILE_ID}X", FILE_ID)
    assert not belongs_to_file("01JD7W3Q9X4M2K8N6P0R5T1V40", FILE_ID)


class Described(PagedHistory):
    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        return {**_run(FILE_ID, "FAILED", 0), "input": "{}", "error": "E", "cause": "C", "redriveCount": 1}


def test_describe_joins_the_run_and_its_states() -> None:
    h = History()
    h.add("ExecutionStarted", 0)
    h.add("PassStateEntered", 1, name="Only", input="{}")
    h.add("PassStateExited", 2, name="Only", output="{}")
    detail = describe(Described(h.events, ignores_paging=False), MACHINE, FILE_ID)
    assert (detail.summary.name, detail.error, detail.cause, detail.redrive_count) == (FILE_ID, "E", "C", 1)
    assert [s.name for s in detail.states] == ["Only"]
