"""The operator commands' text output: tables, durations, errors, execution reports and replay summaries."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from filepipe.ops.executions import ExecutionDetail, ExecutionSummary, StateRun
from filepipe.ops.render import (
    describe_error,
    execution_json,
    execution_report,
    executions_table,
    format_duration,
    format_time,
    replay_summary,
    shorten,
    table,
)
from filepipe.ops.replay import Action, Outcome

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
FILE_ID = "01JD7W3Q9X4M2K8N6P0R5T1V3Z"
LAMBDA_CAUSE = json.dumps(
    {
        "errorType": "ScannerUnavailable",
        "errorMessage": json.dumps({"code": "ScannerUnavailable", "message": "cannot connect to clamd"}),
        "stackTrace": ['  File "handler.py", line 1\n'],
    }
)


def test_table_pads_columns_and_right_aligns_the_ones_asked() -> None:
    text = table(["NAME", "N"], [["a", "1"], ["longer", "100"]], right={1})
    assert text.splitlines() == [
        "NAME      N",
        "------  ---",
        "a         1",
        "longer  100",
    ]


def test_table_strips_trailing_blanks_of_empty_last_cells() -> None:
    assert table(["A", "ERROR"], [["x", ""]]).splitlines()[-1] == "x"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (0.0, "0 ms"),
        (0.0123, "12 ms"),
        (1.234, "1.23 s"),
        (59.994, "59.99 s"),
        (75, "1 m 15 s"),
        (3725, "1 h 02 m"),
    ],
)
def test_durations_read_at_a_glance(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


def test_times_are_shown_in_utc_to_the_millisecond() -> None:
    moment = datetime(2026, 3, 1, 14, 0, 5, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert format_time(moment) == "2026-03-01 12:00:05.123Z"
    assert format_time(None) == "-"


def test_shorten_keeps_one_line_within_the_width() -> None:
    assert shorten("a\n  b\tc") == "a b c"
    assert shorten("x" * 50, width=10) == "xxxxxxx..."
    assert len(shorten("y" * 500)) == 160
    assert shorten(None) == "-"


@pytest.mark.parametrize(
    ("error", "cause", "text"),
    [
        ("ScannerUnavailable", LAMBDA_CAUSE, "ScannerUnavailable: cannot connect to clamd"),
        (
            "RuntimeError",
            json.dumps({"errorType": "RuntimeError", "errorMessage": "boom"}),
            "RuntimeError: boom",
        ),
        ("States.Timeout", "Task timed out after 30 s", "States.Timeout: Task timed out after 30 s"),
        ("States.Timeout", None, "States.Timeout"),
        (None, None, ""),
    ],
)
def test_errors_show_the_code_and_the_message_without_the_stack_trace(
    error: str | None, cause: str | None, text: str
) -> None:
    assert describe_error(error, cause) == text


def test_the_executions_table_shows_a_running_run_without_a_stop() -> None:
    runs = [
        ExecutionSummary(f"{FILE_ID}-replay-1", "arn:1", "RUNNING", T0 + timedelta(minutes=5), None),
        ExecutionSummary(FILE_ID, "arn:0", "FAILED", T0, T0 + timedelta(seconds=2.5)),
    ]
    lines = executions_table(runs).splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "STARTED", "STOPPED", "DURATION"]
    assert lines[2].split() == [f"{FILE_ID}-replay-1", "RUNNING", "2026-03-01", "12:05:00.000Z", "-", "-"]
    expected = [FILE_ID, "FAILED", "2026-03-01", "12:00:00.000Z", "2026-03-01", "12:00:02.500Z", "2.50", "s"]
    assert lines[3].split() == expected
    assert executions_table([]) == "no executions"


def _failed_detail() -> ExecutionDetail:
    state_input = json.dumps({"file": {"fileId": FILE_ID}})
    scan = StateRun("Scan for malware", "Task", T0 + timedelta(milliseconds=40), input=state_input)
    scan.exited = T0 + timedelta(seconds=2.2)
    scan.output = json.dumps({"file": {"fileId": FILE_ID}, "failure": {"Error": "ScannerUnavailable"}})
    scan.attempts = 3
    scan.error, scan.cause = "ScannerUnavailable", LAMBDA_CAUSE
    mark = StateRun("Mark processing", "Task", T0, input=state_input)
    mark.exited, mark.output, mark.attempts = T0 + timedelta(milliseconds=30), state_input, 1
    fail = StateRun("Processing failed", "Fail", T0 + timedelta(seconds=2.3), input=state_input)
    fail.ended = T0 + timedelta(seconds=2.302)
    fail.error, fail.cause = "ScannerUnavailable", LAMBDA_CAUSE
    return ExecutionDetail(
        summary=ExecutionSummary(
            FILE_ID, f"arn:aws:states:::execution:sm:{FILE_ID}", "FAILED", T0, fail.ended
        ),
        input=state_input,
        output=None,
        error="ScannerUnavailable",
        cause=LAMBDA_CAUSE,
        redrive_count=0,
        states=[mark, scan, fail],
    )


def test_the_execution_report_lists_every_state_with_its_duration_retries_and_error() -> None:
    report = execution_report(_failed_detail())
    lines = report.splitlines()

    assert "Status     FAILED" in lines
    assert "Duration   2.30 s" in lines
    assert "Error      ScannerUnavailable: cannot connect to clamd" in lines
    rows = [line.split(None, 1)[1] for line in lines if line.strip()[:1].isdigit() and "  " in line.strip()]
    assert rows[0].split() == ["Mark", "processing", "Task", "ok", "30", "ms", "0"]
    assert rows[1].split()[:8] == ["Scan", "for", "malware", "Task", "caught", "2.16", "s", "2"]
    assert rows[1].endswith("ScannerUnavailable: cannot connect to clamd")
    assert rows[2].split()[:6] == ["Processing", "failed", "Fail", "failed", "2", "ms"]
    assert "  2. Scan for malware (Task, caught, 2.16 s)" in lines
    assert f'     input:  {{"file": {{"fileId": "{FILE_ID}"}}}}' in lines
    assert "     error:  ScannerUnavailable: cannot connect to clamd" in lines
    assert "Output" not in report  # a failed run has none


def test_full_prints_inputs_and_outputs_whole_and_indented() -> None:
    detail = _failed_detail()
    detail.states[1].output = json.dumps({"file": {"fileId": FILE_ID}, "big": "z" * 400})
    short = execution_report(detail)
    full = execution_report(detail, full=True)
    assert "z" * 400 not in short
    assert "z" * 400 in full
    assert '             "fileId": ' in full  # nested lines line up under the label


def test_execution_json_carries_every_state() -> None:
    shown = execution_json(_failed_detail())
    assert [s["name"] for s in shown["states"]] == [
        "Mark processing",
        "Scan for malware",
        "Processing failed",
    ]
    assert shown["states"][1]["retries"] == 2
    assert shown["states"][2]["status"] == "failed"
    assert shown["states"][2]["durationSeconds"] == pytest.approx(0.002)
    assert shown["stopDate"] == "2026-03-01 12:00:02.302Z"
    json.dumps(shown)  # serialisable as it stands


def test_the_replay_summary_has_a_row_per_message_and_the_counts() -> None:
    outcomes = [
        Outcome("failed", "m1", Action.START, FILE_ID, f"{FILE_ID}-replay-1", "started", deleted=True),
        Outcome("failed", "m2", Action.UNREPLAYABLE, None, None, "body is not JSON"),
        Outcome(
            "start", "m3", Action.ALREADY_DONE, "01JD7W3Q9X4M2K8N6P0R5T1V40", None, "file is READY", True
        ),
    ]
    lines = replay_summary(outcomes).splitlines()
    assert lines[0].split() == ["QUEUE", "FILE", "ACTION", "EXECUTION", "MESSAGE", "DETAIL"]
    assert lines[2].split() == ["failed", FILE_ID, "start", f"{FILE_ID}-replay-1", "deleted", "started"]
    assert lines[3].split()[:5] == ["failed", "-", "unreplayable", "-", "kept"]
    assert lines[-1] == "3 message(s): 1 already done, 1 start, 1 unreplayable; 1 left in the queue"


def test_the_replay_summary_says_what_a_dry_run_would_do() -> None:
    outcomes = [
        Outcome("failed", "m1", Action.START, FILE_ID, f"{FILE_ID}-replay-2", "would start", dry_run=True),
        Outcome("failed", "m2", Action.REDRIVE, FILE_ID, FILE_ID, "would redrive", dry_run=True),
        Outcome("failed", "m3", Action.UNREPLAYABLE, None, None, "no input", dry_run=True),
    ]
    text = replay_summary(outcomes, dry_run=True)
    lines = text.splitlines()
    assert lines[2].split()[2:6] == ["would", "start", f"{FILE_ID}-replay-2", "would"]
    assert lines[3].split()[2:4] == ["would", "redrive"]
    assert lines[4].split()[2:5] == ["unreplayable", "-", "kept"]
    assert text.endswith("3 left in the queue (dry run: nothing was changed)")


def test_the_replay_summary_shows_results_only_when_waited_for() -> None:
    waited = Outcome("failed", "m1", Action.START, FILE_ID, "x", "started", deleted=True, result="SUCCEEDED")
    assert replay_summary([waited]).splitlines()[0].split() == [
        "QUEUE",
        "FILE",
        "ACTION",
        "EXECUTION",
        "MESSAGE",
        "RESULT",
        "DETAIL",
    ]
    assert replay_summary([]) == "nothing to replay: the dead-letter queues are empty"
