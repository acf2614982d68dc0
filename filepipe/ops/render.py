"""Plain-text tables and reports for the operator commands (no dependency beyond the standard library)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from common.errors import failure_reason
from filepipe.ops.executions import ExecutionDetail, ExecutionSummary, StateRun

if TYPE_CHECKING:  # replay pulls in boto3; listing and showing executions do not need it
    from filepipe.ops.replay import Outcome

PREVIEW_WIDTH = 160


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Collection[int] = ()) -> str:
    """Columns padded to their widest cell; ``right`` holds the indexes of right-aligned columns."""
    widths = [len(h) for h in headers]
    for row in rows:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]) for i, cell in enumerate(cells)
        ]
        return "  ".join(padded).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(row) for row in rows)])


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} m {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} m"


def format_time(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def shorten(text: str | None, width: int = PREVIEW_WIDTH) -> str:
    """One line, at most ``width`` characters."""
    if text is None:
        return "-"
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def describe_error(error: str | None, cause: str | None) -> str:
    """``Code: message``; Lambda's cause (JSON with a stack trace) is reduced to its message."""
    if not error and not cause:
        return ""
    reason = failure_reason({"Error": error, "Cause": cause})
    if reason["message"] in ("", reason["code"]):
        return reason["code"]
    return f"{reason['code']}: {reason['message']}"


def _compact(text: str | None, full: bool) -> str:
    if text is None:
        return "-"
    if full:
        try:
            return json.dumps(json.loads(text), indent=2, sort_keys=True)
        except ValueError:
            return text
    return shorten(text)


def executions_table(executions: Sequence[ExecutionSummary]) -> str:
    if not executions:
        return "no executions"
    rows = [
        [e.name, e.status, format_time(e.started), format_time(e.stopped), format_duration(e.duration)]
        for e in executions
    ]
    return table(["NAME", "STATUS", "STARTED", "STOPPED", "DURATION"], rows, right={4})


def states_table(states: Sequence[StateRun], error_width: int = 80) -> str:
    rows = [
        [
            str(index),
            state.name,
            state.type,
            state.status,
            format_duration(state.duration),
            str(state.retries),
            shorten(describe_error(state.error, state.cause), error_width) if state.error else "",
        ]
        for index, state in enumerate(states, start=1)
    ]
    return table(["#", "STATE", "TYPE", "STATUS", "DURATION", "RETRIES", "ERROR"], rows, right={0, 4, 5})


def execution_report(detail: ExecutionDetail, full: bool = False) -> str:
    """Header, one row per state, then each state's input, output and error."""
    summary = detail.summary
    header = [
        ("Execution", summary.name),
        ("ARN", summary.arn),
        ("Status", summary.status),
        ("Started", format_time(summary.started)),
        ("Stopped", format_time(summary.stopped)),
        ("Duration", format_duration(summary.duration)),
    ]
    if detail.redrive_count:
        header.append(("Redriven", f"{detail.redrive_count} time(s)"))
    if detail.error or detail.cause:
        header.append(("Error", describe_error(detail.error, detail.cause)))
    header.append(("Input", _compact(detail.input, full)))
    if detail.output is not None:
        header.append(("Output", _compact(detail.output, full)))
    width = max(len(label) for label, _ in header)
    lines = [f"{label.ljust(width)}  {value}" for label, value in header]
    if not detail.states:
        return "\n".join([*lines, "", "no states entered"])
    lines += ["", states_table(detail.states), "", "States"]
    for index, state in enumerate(detail.states, start=1):
        lines.append(
            f"  {index}. {state.name} ({state.type}, {state.status}, {format_duration(state.duration)})"
        )
        lines.append(f"     input:  {_indent(_compact(state.input, full))}")
        lines.append(f"     output: {_indent(_compact(state.output, full))}")
        if state.error:
            lines.append(f"     error:  {_indent(describe_error(state.error, state.cause))}")
    return "\n".join(lines)


def _indent(text: str) -> str:
    return text.replace("\n", "\n" + " " * 13)


def execution_json(detail: ExecutionDetail) -> dict[str, Any]:
    return {
        **summary_json(detail.summary),
        "redriveCount": detail.redrive_count,
        "input": detail.input,
        "output": detail.output,
        "error": detail.error,
        "cause": detail.cause,
        "states": [
            {
                "name": state.name,
                "type": state.type,
                "status": state.status,
                "enteredAt": format_time(state.entered),
                "exitedAt": format_time(state.exited) if state.exited else None,
                "durationSeconds": state.duration,
                "retries": state.retries,
                "input": state.input,
                "output": state.output,
                "error": state.error,
                "cause": state.cause,
            }
            for state in detail.states
        ],
    }


def summary_json(summary: ExecutionSummary) -> dict[str, Any]:
    return {
        "name": summary.name,
        "executionArn": summary.arn,
        "status": summary.status,
        "startDate": format_time(summary.started),
        "stopDate": format_time(summary.stopped) if summary.stopped else None,
        "durationSeconds": summary.duration,
    }


_PLANNED = frozenset({"redrive", "start", "already done", "duplicate"})


def _action_label(outcome: Outcome) -> str:
    if outcome.dry_run and outcome.action.value in ("redrive", "start"):
        return f"would {outcome.action.value}"
    return outcome.action.value


def _message_state(outcome: Outcome) -> str:
    if outcome.deleted:
        return "deleted"
    if outcome.dry_run and outcome.action.value in _PLANNED:
        return "would delete"
    return "kept"


def replay_summary(outcomes: Sequence[Outcome], dry_run: bool = False) -> str:
    """One row per message handled, then the counts by action."""
    if not outcomes:
        return "nothing to replay: the dead-letter queues are empty" + (" (dry run)" if dry_run else "")
    rows = []
    for outcome in outcomes:
        rows.append(
            [
                outcome.queue,
                outcome.file_id or "-",
                _action_label(outcome),
                outcome.execution or "-",
                _message_state(outcome),
                *([outcome.result or "-"] if any(o.result for o in outcomes) else []),
                shorten(outcome.detail, 100),
            ]
        )
    headers = ["QUEUE", "FILE", "ACTION", "EXECUTION", "MESSAGE"]
    if any(o.result for o in outcomes):
        headers.append("RESULT")
    headers.append("DETAIL")
    counts = Counter(outcome.action.value for outcome in outcomes)
    totals = ", ".join(f"{count} {action}" for action, count in sorted(counts.items()))
    kept = sum(1 for outcome in outcomes if not outcome.deleted)
    footer = f"{len(outcomes)} message(s): {totals}; {kept} left in the queue"
    if dry_run:
        footer += " (dry run: nothing was changed)"
    return table(headers, rows) + "\n\n" + footer
