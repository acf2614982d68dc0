"""`filepipe rescan`: scan stored READY files again through the RescanFiles workflow; report what it found."""

from __future__ import annotations

import argparse
import json
import re
import secrets
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TextIO

from filepipe.ops import render
from filepipe.ops.audit import AuditLog, operator_name
from filepipe.ops.executions import iter_executions
from filepipe.ops.target import RESCAN_STATE_MACHINE_ARN, Target, add_target_arguments

EXIT_ATTENTION = 1  # files could not be scanned, the window is not covered yet, or the run failed
EXIT_USAGE = 2

# The workflow's bounds on one execution's work (rescan.logic.MAX_LIMIT: what a Standard execution's
# 25,000-event history holds; docs/rescans.md).
MIN_LIMIT = 1
MAX_LIMIT = 500
DEFAULT_LIMIT = 500
DEFAULT_TIMEOUT_SECONDS = 3600.0
MAX_TIMEOUT_SECONDS = 24 * 3600.0
# How far back `--resume` looks for the run to continue: newest first, each one a DescribeExecution.
RESUME_LOOKBACK = 100
# Polling starts brisk (a local run ends in seconds) and slows down for long runs on AWS.
FIRST_POLL_SECONDS = 0.2
MAX_POLL_SECONDS = 5.0
MAX_LISTED_ROWS = 100

OPERATOR = "operator"
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})
TOTAL_COLUMNS = ("examined", "listed", "bytes", "clean", "infected", "failed")

_DURATION = re.compile(r"^(?P<amount>\d{1,6})(?P<unit>[dhm])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


class UsageError(Exception):
    """The arguments cannot make a rescan (a window in the future, empty, or nothing to resume)."""


# ------------------------------------------------------------------ times
@dataclass(frozen=True)
class Moment:
    """A point in time as typed: an age relative to now (``7d``) or an absolute UTC time."""

    text: str
    age: timedelta | None = None
    at: datetime | None = None

    def resolve(self, now: datetime) -> datetime:
        if self.at is not None:
            return self.at
        assert self.age is not None
        return now - self.age


def parse_moment(text: str) -> Moment:
    """``7d``, ``12h``, ``30m`` (ago), or ISO 8601 with ``Z`` or an offset; a bare date is midnight UTC."""
    value = text.strip()
    duration = _DURATION.match(value)
    if duration:
        amount = int(duration["amount"])
        if amount == 0:
            raise argparse.ArgumentTypeError(f"{text!r} is no time ago: use 1{duration['unit']} or more")
        try:
            return Moment(value, age=timedelta(**{_UNITS[duration["unit"]]: amount}))
        except OverflowError:
            raise argparse.ArgumentTypeError(f"{text!r} is too long ago") from None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            day = date.fromisoformat(value)
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"{text!r} is not a date: {error}") from None
        return Moment(value, at=datetime(day.year, day.month, day.day, tzinfo=UTC))
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a duration (7d, 12h, 30m) nor an ISO 8601 time (2026-01-31T08:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone: end it with Z (UTC) or an offset")
    return Moment(value, at=moment.astimezone(UTC))


def iso(moment: datetime) -> str:
    """UTC with Z, in whole seconds unless the time has a fraction (then milliseconds)."""
    moment = moment.astimezone(UTC)
    spec = "seconds" if moment.microsecond == 0 else "milliseconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


def whole_second_ceiling(moment: datetime) -> datetime:
    return moment if moment.microsecond == 0 else moment.replace(microsecond=0) + timedelta(seconds=1)


def build_window(since: Moment, until: Moment | None, now: datetime) -> dict[str, str]:
    """``[from, to)``; ``to`` defaults to now, rounded up so a file that became READY just now is in it."""
    start = since.resolve(now)
    if since.age is not None:
        start = start.replace(microsecond=0)
    if start > now:
        raise UsageError(f"--since {since.text} is in the future (now is {iso(now)})")
    end = whole_second_ceiling(now) if until is None else until.resolve(now)
    if until is not None and end > whole_second_ceiling(now):
        raise UsageError(
            f"--until {until.text} is in the future (now is {iso(now)}): leave it out to mean now"
        )
    if start >= end:
        raise UsageError(f"--since ({iso(start)}) must be before --until ({iso(end)})")
    return {"from": iso(start), "to": iso(end)}


def execution_name(now: datetime) -> str:
    """``rescan-<YYYYMMDDTHHMMSSZ>-<4 hex>``: sorts by start, and two operators in one second differ."""
    return f"rescan-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


def execution_input(
    window: Mapping[str, str], limit: int, dry_run: bool, cursor: str | None = None
) -> dict[str, Any]:
    return {"window": dict(window), "limit": limit, "dryRun": dry_run, "cursor": cursor, "reason": OPERATOR}


# ------------------------------------------------------------------ resume
@dataclass(frozen=True)
class ResumePoint:
    """An earlier execution that stopped at its limit, and the input that continues it."""

    execution: str
    window: dict[str, str]
    dry_run: bool
    cursor: str
    limit: int


def _json_object(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _resume_key(window: Any, dry_run: Any, cursor: Any) -> str:
    return json.dumps([window, bool(dry_run), cursor], sort_keys=True)


def find_resume_point(stepfunctions: Any, state_machine_arn: str) -> ResumePoint:
    """The newest execution whose output says ``complete: false`` and that no later run continued already.

    A SUCCEEDED or RUNNING execution started with a cursor continues the run that gave it out; a failed
    one did not, so its starting point is still open. Raises UsageError when there is nothing to resume.
    """
    listed = sorted(
        iter_executions(stepfunctions, state_machine_arn),
        key=lambda item: item["startDate"],
        reverse=True,
    )[:RESUME_LOOKBACK]
    continued: dict[str, tuple[str, str]] = {}
    for item in listed:
        if item["status"] not in ("SUCCEEDED", "RUNNING"):
            continue
        described = stepfunctions.describe_execution(executionArn=item["executionArn"])
        started_with = _json_object(described.get("input"))
        if started_with.get("cursor"):
            key = _resume_key(started_with.get("window"), started_with.get("dryRun"), started_with["cursor"])
            continued.setdefault(key, (item["name"], item["status"]))
        if item["status"] != "SUCCEEDED":
            continue
        output = _json_object(described.get("output"))
        if output.get("complete") is not False or not output.get("cursor"):
            continue
        window = output.get("window") or started_with.get("window")
        dry_run = output.get("dryRun", started_with.get("dryRun", False))
        key = _resume_key(window, dry_run, output["cursor"])
        if key in continued:
            name, status = continued[key]
            if status == "RUNNING":
                raise UsageError(f"{item['name']} is being resumed by {name}, which is still running")
            continue
        if not isinstance(window, dict):
            continue
        return ResumePoint(
            execution=item["name"],
            window={"from": str(window.get("from")), "to": str(window.get("to"))},
            dry_run=bool(dry_run),
            cursor=str(output["cursor"]),
            limit=int(started_with.get("limit") or DEFAULT_LIMIT),
        )
    raise UsageError(
        "nothing to resume: no rescan among the newest "
        f"{RESUME_LOOKBACK} stopped at its limit without a later run continuing it"
    )


# ------------------------------------------------------------------ the run
@dataclass(frozen=True)
class Clock:
    """Where the command reads the time, and how it waits; tests freeze it."""

    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


@dataclass
class Result:
    """How the execution ended, as far as it was waited for."""

    name: str
    arn: str
    status: str  # RUNNING when not waited for, or still running when waiting stopped
    output: dict[str, Any] | None = None
    error: str | None = None
    cause: str | None = None


def start(
    stepfunctions: Any, state_machine_arn: str, payload: Mapping[str, Any], now: datetime
) -> tuple[str, str]:
    """Start the execution; a second try with fresh hex if the name was taken in the same second."""
    from common.aws import error_code

    for attempt in range(2):
        name = execution_name(now)
        try:
            response = stepfunctions.start_execution(
                stateMachineArn=state_machine_arn, name=name, input=json.dumps(payload)
            )
        except Exception as error:
            if error_code(error) == "ExecutionAlreadyExists" and attempt == 0:
                continue
            raise
        return name, str(response["executionArn"])
    raise AssertionError("unreachable")


def wait(stepfunctions: Any, name: str, arn: str, timeout: float, clock: Clock) -> Result:
    """Poll DescribeExecution until the run ends or ``timeout`` seconds pass."""
    deadline = clock.monotonic() + timeout
    interval = FIRST_POLL_SECONDS
    while True:
        described = stepfunctions.describe_execution(executionArn=arn)
        status = str(described["status"])
        if status in TERMINAL:
            output = _json_object(described.get("output")) if described.get("output") else None
            return Result(name, arn, status, output, described.get("error"), described.get("cause"))
        remaining = deadline - clock.monotonic()
        if remaining <= 0:
            return Result(name, arn, status)
        clock.sleep(min(interval, remaining))
        interval = min(interval * 1.5, MAX_POLL_SECONDS)


def exit_code(result: Result) -> int:
    """0 only when the whole window was covered and every file listed was scanned."""
    if result.status != "SUCCEEDED" or result.output is None:
        return EXIT_ATTENTION
    totals = result.output.get("totals") or {}
    if int(totals.get("failed") or 0) > 0 or result.output.get("complete") is not True:
        return EXIT_ATTENTION
    return 0


# ------------------------------------------------------------------ text
def format_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def totals_table(totals: Mapping[str, Any]) -> str:
    """One row: the contract's counts in its order, then any further count the workflow gives."""
    columns = [*TOTAL_COLUMNS, *sorted(key for key in totals if key not in TOTAL_COLUMNS)]
    cells = [
        format_bytes(int(totals.get(key) or 0)) if key == "bytes" else str(totals.get(key, 0))
        for key in columns
    ]
    return render.table([key.upper() for key in columns], [cells], right=set(range(len(columns))))


def _listed(title: str, rows: Sequence[Mapping[str, Any]], last: str, total: int) -> list[str]:
    if not rows and not total:
        return []
    shown = rows[:MAX_LISTED_ROWS]
    lines = ["", f"{title} ({total})"]
    lines.append(
        render.table(
            ["FILE", "OWNER", last.upper()],
            [
                [str(row.get("fileId", "-")), str(row.get("ownerId", "-")), str(row.get(last) or "-")]
                for row in shown
            ],
        )
    )
    if total > len(shown):
        lines.append(f"... and {total - len(shown)} more (the execution's output lists {len(shown)})")
    return lines


def report(result: Result) -> str:
    """Status, window, totals, the files quarantined and those not scanned, and what to do next."""
    lines = [f"{result.name}: {result.status}"]
    if result.status == "RUNNING":
        return "\n".join(lines)
    if result.status != "SUCCEEDED":
        lines.append(f"error: {render.describe_error(result.error, result.cause) or 'none given'}")
        return "\n".join(lines)
    output = result.output or {}
    window = output.get("window") or {}
    dry_run = bool(output.get("dryRun"))
    lines.append(
        f"window: {window.get('from', '?')} to {window.get('to', '?')}" + (" (dry run)" if dry_run else "")
    )
    totals = output.get("totals") or {}
    lines += ["", totals_table(totals)]
    lines += _listed(
        "Quarantined", output.get("quarantined") or [], "signature", int(totals.get("infected") or 0)
    )
    lines += _listed(
        "Could not be scanned", output.get("failures") or [], "error", int(totals.get("failed") or 0)
    )
    lines.append("")
    if dry_run:
        size = format_bytes(int(totals.get("bytes") or 0))
        lines.append(
            f"Dry run: {totals.get('listed', 0)} READY file(s) ({size}) would be scanned; "
            "nothing was scanned or changed."
        )
    if output.get("complete") is True:
        lines.append("The whole window was covered.")
    else:
        lines.append("Stopped at the limit before the end of the window: `filepipe rescan --resume` goes on.")
    if int(totals.get("failed") or 0):
        lines.append("Some files could not be scanned; they stay READY. Run the rescan again to retry them.")
    return "\n".join(lines)


# ------------------------------------------------------------------ the command
def add_arguments(parser: argparse.ArgumentParser) -> None:
    window = parser.add_argument_group("what to scan")
    window.add_argument(
        "--since",
        type=parse_moment,
        metavar="WHEN",
        help="files that became READY from WHEN: 7d, 12h, 30m ago, or an ISO 8601 time with Z or an offset",
    )
    window.add_argument(
        "--until", type=parse_moment, metavar="WHEN", help="... up to (not including) WHEN (default: now)"
    )
    window.add_argument(
        "--limit",
        type=_limit,
        metavar="N",
        help=f"scan at most N files in this run ({MIN_LIMIT}..{MAX_LIMIT}, default {DEFAULT_LIMIT}; "
        "--resume: the resumed run's)",
    )
    window.add_argument(
        "--dry-run", action="store_true", help="count what would be scanned; scan and change nothing"
    )
    window.add_argument(
        "--resume",
        action="store_true",
        help="go on where the newest rescan that stopped at its limit stopped (same window and dry run)",
    )
    run = parser.add_argument_group("waiting and output")
    run.add_argument("--no-wait", action="store_true", help="start the rescan and return")
    run.add_argument(
        "--timeout",
        type=_timeout,
        default=DEFAULT_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help=f"stop waiting after SECONDS; the rescan goes on (default {DEFAULT_TIMEOUT_SECONDS:g})",
    )
    run.add_argument("--json", action="store_true", help="print the execution's result as JSON")
    run.add_argument("--audit-log", metavar="PATH", help="append the audit lines to PATH instead of stderr")
    add_target_arguments(parser)


def _limit(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if not MIN_LIMIT <= number <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"must be from {MIN_LIMIT} to {MAX_LIMIT}")
    return number


def _timeout(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if not 0 < number <= MAX_TIMEOUT_SECONDS:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most {MAX_TIMEOUT_SECONDS:g} seconds")
    return number


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """What argparse cannot say by itself: which options go together."""
    if args.resume:
        given = [option for option, value in (("--since", args.since), ("--until", args.until)) if value]
        if args.dry_run:
            given.append("--dry-run")
        if given:
            parser.error(
                f"--resume takes the window and dry run of the run it resumes: drop {', '.join(given)}"
            )
    elif args.since is None:
        parser.error("say which files to scan: --since 7d (or an ISO 8601 time), or --resume")


def run(args: argparse.Namespace, target: Target, clock: Clock, out: TextIO | None = None) -> int:
    """Start (or resume) one rescan, wait for it unless told not to, report it; the exit code."""
    from common.aws import error_code

    try:
        return _run(args, target, clock, out or sys.stdout)
    except UsageError as error:
        print(f"filepipe rescan: {error}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as error:
        code = error_code(error)
        if not code:
            raise
        # The service refused (no such state machine, no permission): its own words say what to fix.
        print(f"filepipe rescan: {target.description} refused: {code}: {error}", file=sys.stderr)
        return EXIT_ATTENTION


def _run(args: argparse.Namespace, target: Target, clock: Clock, out: TextIO) -> int:
    stepfunctions = target.client("stepfunctions")
    state_machine = target.output(RESCAN_STATE_MACHINE_ARN)
    now = clock.now()
    resumed: ResumePoint | None = None
    if args.resume:
        resumed = find_resume_point(stepfunctions, state_machine)
        payload = execution_input(
            resumed.window, args.limit or resumed.limit, resumed.dry_run, resumed.cursor
        )
    else:
        window = build_window(args.since, args.until, now)
        payload = execution_input(window, args.limit or DEFAULT_LIMIT, args.dry_run)

    # With --json, stdout is the JSON document alone.
    info = sys.stderr if args.json else out
    with ExitStack() as stack:
        stream: TextIO = (
            stack.enter_context(open(args.audit_log, "a", encoding="utf-8")) if args.audit_log else sys.stderr
        )
        actor = {"user": operator_name(), "principal": target.identity(), "target": target.description}
        audit = AuditLog(stream, actor)
        name, arn = start(stepfunctions, state_machine, payload, now)
        audit.record(
            "start-rescan",
            "accepted",
            executionName=name,
            executionArn=arn,
            window=payload["window"],
            limit=payload["limit"],
            dryRun=payload["dryRun"],
            resumedFrom=resumed.execution if resumed else None,
        )
        window = payload["window"]
        what = "dry run over" if payload["dryRun"] else "rescan of"
        print(
            f"Started {name}: {what} READY files from {window['from']} to {window['to']}, "
            f"at most {payload['limit']}" + (f", resuming {resumed.execution}" if resumed else ""),
            file=info,
        )
        link = target.console_link(arn)
        if link:
            print(f"  console: {link}", file=info)
        if args.no_wait:
            print(f"  follow it: filepipe execution {arn}", file=info)
            if args.json:
                document = {"name": name, "executionArn": arn, "status": "RUNNING", "input": payload}
                print(json.dumps(document, indent=2), file=out)
            return 0
        print(
            f"Waiting for it to end (at most {render.format_duration(args.timeout)}; Ctrl-C stops waiting, "
            "not the rescan) ...",
            file=info,
            flush=True,
        )
        try:
            result = wait(stepfunctions, name, arn, args.timeout, clock)
        except KeyboardInterrupt:
            print(f"\nStopped waiting; {name} goes on. Follow it: filepipe execution {arn}", file=info)
            return EXIT_ATTENTION
        _audit_result(audit, result)
    if args.json:
        print(json.dumps(_result_json(result, payload), indent=2), file=out)
    else:
        print(file=out)
        print(report(result), file=out)
    if result.status == "RUNNING":
        print(
            f"Stopped waiting after {render.format_duration(args.timeout)}; {name} goes on. "
            f"Follow it: filepipe execution {arn}",
            file=info,
        )
    return exit_code(result)


def _audit_result(audit: AuditLog, result: Result) -> None:
    output = result.output or {}
    for found in output.get("quarantined") or []:
        audit.record(
            "quarantine",
            "dry-run" if output.get("dryRun") else "quarantined",
            executionName=result.name,
            fileId=found.get("fileId"),
            ownerId=found.get("ownerId"),
            signature=found.get("signature"),
        )
    audit.record(
        "rescan-result",
        result.status.lower(),
        executionName=result.name,
        totals=output.get("totals"),
        complete=output.get("complete"),
        cursor=output.get("cursor"),
        error=result.error,
    )


def _result_json(result: Result, payload: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": result.name,
        "executionArn": result.arn,
        "status": result.status,
        "input": dict(payload),
        "output": result.output,
        "error": result.error,
        "cause": result.cause,
    }


DESCRIPTION = (
    "Start one RescanFiles execution over the READY files of a time window, wait for it, and print what "
    "it scanned, quarantined and could not scan. Exit code 0 when the whole window was covered and every "
    "file scanned, 1 otherwise (files not scanned, the limit reached: --resume goes on, the run failed, or "
    "waiting stopped), 2 for bad arguments. One JSON audit line per action goes to stderr (or --audit-log)."
)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "rescan",
        help="scan stored READY files again; quarantine any found infected",
        description=DESCRIPTION,
    )
    add_arguments(parser)
    return parser
