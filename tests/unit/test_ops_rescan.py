"""`filepipe rescan`: arguments, the execution input they make, resuming, waiting, report and exit codes."""

from __future__ import annotations

import argparse
import itertools
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from filepipe.cli import build_parser as filepipe_parser
from filepipe.ops import rescan
from filepipe.ops.cli import main
from filepipe.ops.rescan import (
    Clock,
    Moment,
    UsageError,
    build_window,
    find_resume_point,
    iso,
    parse_moment,
    totals_table,
)
from filepipe.ops.target import RESCAN_STATE_MACHINE_ARN, Target

# A frozen clock a little past a whole second, so rounding shows; derived from today, never a fixed date.
NOW = datetime.now(UTC).replace(microsecond=250_000)
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:filepipe-RescanFiles"
FILE_A = "01JD7W3Q9X4M2K8N6P0R5T1V3Z"
FILE_B = "01JD7W3Q9X4M2K8N6P0R5T1V4A"
OWNER = "4f1c2d3e-0000-4000-8000-000000000001"
_NAME = re.compile(r"^rescan-(?P<stamp>\d{8}T\d{6}Z)-[0-9a-f]{4}$")


def frozen(now: datetime = NOW) -> Clock:
    """Time stands still except while the command sleeps between polls."""
    elapsed = [0.0]

    def sleep(seconds: float) -> None:
        elapsed[0] += seconds

    return Clock(now=lambda: now, monotonic=lambda: elapsed[0], sleep=sleep)


def window_of(days: int, now: datetime = NOW) -> dict[str, str]:
    return {"from": iso((now - timedelta(days=days)).replace(microsecond=0)), "to": iso(now)}


def output(
    window: dict[str, str] | None = None,
    *,
    complete: bool = True,
    cursor: str | None = None,
    dry_run: bool = False,
    infected: list[dict[str, str]] | None = None,
    failures: list[dict[str, str]] | None = None,
    listed: int | None = None,
) -> dict[str, Any]:
    infected = infected or []
    failures = failures or []
    scanned = listed if listed is not None else len(infected) + len(failures) + 3
    return {
        "window": window or window_of(7),
        "dryRun": dry_run,
        "reason": "operator",
        "totals": {
            "examined": scanned + 10,
            "listed": scanned,
            "bytes": 3 * 1024 * 1024 + 512 * 1024,
            "clean": 0 if dry_run else scanned - len(infected) - len(failures),
            "infected": len(infected),
            "failed": len(failures),
        },
        "quarantined": infected,
        "failures": failures,
        "cursor": cursor,
        "complete": complete,
    }


class FakeStepFunctions:
    """Step Functions as the command uses it: a started run ends after ``polls`` DescribeExecution calls
    with ``outcome`` (status and output, or error and cause)."""

    def __init__(self, outcome: dict[str, Any] | None = None, polls: int = 2) -> None:
        self.outcome = outcome if outcome is not None else {"status": "SUCCEEDED", "output": output()}
        self.polls = polls
        self.executions: dict[str, dict[str, Any]] = {}
        self.started: list[dict[str, Any]] = []
        self.describes: dict[str, int] = {}
        self._order = itertools.count()

    def add(self, name: str, status: str, started: Any, finished: dict[str, Any] | None = None) -> str:
        """An earlier execution; ``started``/``finished`` are its input and output documents."""
        arn = f"{MACHINE.replace(':stateMachine:', ':execution:')}:{name}"
        self.executions[arn] = {
            "executionArn": arn,
            "stateMachineArn": MACHINE,
            "name": name,
            "status": status,
            "startDate": NOW - timedelta(hours=1) + timedelta(seconds=next(self._order)),
            "input": json.dumps(started),
            **({"output": json.dumps(finished)} if finished is not None else {}),
        }
        return arn

    def start_execution(self, stateMachineArn: str, name: str, input: str) -> dict[str, Any]:
        assert stateMachineArn == MACHINE
        arn = f"{MACHINE.replace(':stateMachine:', ':execution:')}:{name}"
        self.started.append({"name": name, "input": json.loads(input)})
        self.executions[arn] = {
            "executionArn": arn,
            "stateMachineArn": MACHINE,
            "name": name,
            "status": "RUNNING",
            "startDate": NOW,
            "input": input,
        }
        return {"executionArn": arn, "startDate": NOW}

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        execution = self.executions[executionArn]
        self.describes[executionArn] = self.describes.get(executionArn, 0) + 1
        is_new = any(executionArn.endswith(f":{s['name']}") for s in self.started)
        if is_new and execution["status"] == "RUNNING" and self.describes[executionArn] >= self.polls:
            execution["status"] = self.outcome["status"]
            if "output" in self.outcome:
                execution["output"] = json.dumps(self.outcome["output"])
            for key in ("error", "cause"):
                if key in self.outcome:
                    execution[key] = self.outcome[key]
        return dict(execution)

    def list_executions(self, stateMachineArn: str, maxResults: int, **kwargs: Any) -> dict[str, Any]:
        assert stateMachineArn == MACHINE
        found = [
            {key: value for key, value in e.items() if key not in ("input", "output", "error", "cause")}
            for e in self.executions.values()
            if kwargs.get("statusFilter") in (None, e["status"])
        ]
        return {"executions": found}


class Sts:
    def get_caller_identity(self) -> dict[str, str]:
        return {"Arn": "arn:aws:iam::123456789012:user/operator"}


def clients(sfn: Any) -> Any:
    def factory(service: str) -> Any:
        return {"stepfunctions": sfn, "sts": Sts()}[service]

    return factory


def cli(sfn: Any, tmp_path: Path, *argv: str, clock: Clock | None = None, audit: bool = True) -> int:
    """The command with explicit names, no running runtime, and the audit trail in a file."""
    extra = ["--audit-log", str(tmp_path / "audit.jsonl")] if audit else []
    return main(
        [
            "rescan",
            *argv,
            *extra,
            "--state-dir",
            str(tmp_path / "no-runtime"),
            "--output",
            f"{RESCAN_STATE_MACHINE_ARN}={MACHINE}",
        ],
        client_factory=clients(sfn),
        clock=clock or frozen(),
    )


def audit_lines(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]


# ------------------------------------------------------------------ times and windows
@pytest.mark.parametrize(
    ("text", "age"),
    [("7d", timedelta(days=7)), ("12h", timedelta(hours=12)), ("30m", timedelta(minutes=30))],
)
def test_durations_are_ages_relative_to_now(text: str, age: timedelta) -> None:
    assert parse_moment(text).resolve(NOW) == NOW - age


def test_iso_times_need_a_zone_and_come_out_in_utc() -> None:
    local = NOW.astimezone(timezone(timedelta(hours=2))).replace(microsecond=0)
    assert parse_moment(local.isoformat()).resolve(NOW) == local.astimezone(UTC)
    zulu = iso(NOW.replace(microsecond=0))
    assert zulu.endswith("Z")
    assert parse_moment(zulu).at == NOW.replace(microsecond=0)
    day = (NOW - timedelta(days=3)).date()
    assert parse_moment(day.isoformat()).at == datetime(day.year, day.month, day.day, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("yesterday", "neither a duration"),
        ("7w", "neither a duration"),
        ("0d", "no time ago"),
        ("-3d", "neither a duration"),
        # an id of its own: a clock-derived id differs between xdist workers, which must collect alike
        pytest.param(NOW.replace(tzinfo=None).isoformat(timespec="seconds"), "no time zone", id="naive-now"),
        ("2026-02-30", "not a date"),
    ],
)
def test_unreadable_times_are_refused_with_a_reason(text: str, says: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=says):
        parse_moment(text)


def test_the_window_runs_from_since_to_now_rounded_outward_to_whole_seconds() -> None:
    window = build_window(parse_moment("7d"), None, NOW)
    assert window == {
        "from": iso((NOW - timedelta(days=7)).replace(microsecond=0)),
        "to": iso(NOW.replace(microsecond=0) + timedelta(seconds=1)),
    }
    assert window["from"].endswith("Z")
    assert "." not in window["from"]


def test_an_until_bounds_the_window() -> None:
    until = iso((NOW - timedelta(days=1)).replace(microsecond=0))
    window = build_window(parse_moment("3d"), parse_moment(until), NOW)
    assert window["to"] == until


@pytest.mark.parametrize(
    ("since", "until", "says"),
    [
        pytest.param(iso(NOW + timedelta(hours=1)), None, "--since .* is in the future", id="since-ahead"),
        pytest.param("1d", iso(NOW + timedelta(hours=1)), "--until .* is in the future", id="until-ahead"),
        pytest.param("1d", "2d", r"--since \(.*\) must be before --until", id="since-after-until"),
        pytest.param(
            iso(NOW - timedelta(hours=2)), iso(NOW - timedelta(hours=2)), "must be before", id="empty-window"
        ),
    ],
)
def test_impossible_windows_are_refused(since: str, until: str | None, says: str) -> None:
    with pytest.raises(UsageError, match=says):
        build_window(parse_moment(since), parse_moment(until) if until else None, NOW)


# ------------------------------------------------------------------ arguments
def test_filepipe_has_the_rescan_subcommand() -> None:
    assert "rescan" in filepipe_parser().format_help()


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--since", "7d", "--limit", "0"], "must be from 1 to 500"),
        (["--since", "7d", "--limit", "501"], "must be from 1 to 500"),
        (["--since", "7d", "--limit", "many"], "not a whole number"),
        (["--since", "last week"], "neither a duration"),
        (["--since", "7d", "--timeout", "0"], "more than 0"),
        ([], "--since 7d .* or --resume"),
        (["--resume", "--since", "7d"], "drop --since"),
        (["--resume", "--dry-run"], "drop --dry-run"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    sfn = FakeStepFunctions()
    with pytest.raises(SystemExit) as exited:
        cli(sfn, tmp_path, *argv)
    assert exited.value.code == 2
    assert re.search(says, capsys.readouterr().err)
    assert sfn.started == []


def test_a_window_in_the_future_exits_2_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sfn = FakeStepFunctions()
    assert cli(sfn, tmp_path, "--since", iso(NOW + timedelta(minutes=5))) == 2
    assert "is in the future" in capsys.readouterr().err
    assert sfn.started == []


def test_without_the_rescan_state_machine_the_error_names_the_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["rescan", "--since", "1d", "--state-dir", str(tmp_path), "--output", "StateMachineArn=arn:x"],
        client_factory=clients(FakeStepFunctions()),
        clock=frozen(),
    )
    assert code == 2
    assert f"--output {RESCAN_STATE_MACHINE_ARN}=VALUE" in capsys.readouterr().err


# ------------------------------------------------------------------ one run
def test_the_execution_starts_with_the_contract_input_and_a_dated_name(tmp_path: Path) -> None:
    sfn = FakeStepFunctions()
    assert cli(sfn, tmp_path, "--since", "7d", "--limit", "250") == 0

    [started] = sfn.started
    assert started["input"] == {
        "window": build_window(parse_moment("7d"), None, NOW),
        "limit": 250,
        "dryRun": False,
        "cursor": None,
        "reason": "operator",
    }
    match = _NAME.match(started["name"])
    assert match
    assert match["stamp"] == NOW.strftime("%Y%m%dT%H%M%SZ")


def test_the_default_limit_and_a_dry_run(tmp_path: Path) -> None:
    sfn = FakeStepFunctions({"status": "SUCCEEDED", "output": output(dry_run=True)})
    assert cli(sfn, tmp_path, "--since", "12h", "--dry-run") == 0
    assert sfn.started[0]["input"]["limit"] == rescan.DEFAULT_LIMIT
    assert sfn.started[0]["input"]["dryRun"] is True


def test_a_clean_complete_run_prints_the_totals_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sfn = FakeStepFunctions(polls=3)
    assert cli(sfn, tmp_path, "--since", "7d") == 0
    text = capsys.readouterr().out
    name = sfn.started[0]["name"]
    assert f"Started {name}: rescan of READY files from" in text
    assert f"{name}: SUCCEEDED" in text
    assert "EXAMINED  LISTED    BYTES  CLEAN  INFECTED  FAILED" in text
    assert "      13       3  3.5 MiB      3         0       0" in text
    assert "The whole window was covered." in text
    assert "Quarantined" not in text
    assert "Could not be scanned" not in text
    assert sfn.describes[f"{MACHINE.replace(':stateMachine:', ':execution:')}:{name}"] == 3


def test_quarantined_files_are_listed_and_audited(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    infected = [{"fileId": FILE_A, "ownerId": OWNER, "signature": "Filepipe.Test.EICAR-Body"}]
    sfn = FakeStepFunctions({"status": "SUCCEEDED", "output": output(infected=infected)})
    assert cli(sfn, tmp_path, "--since", "1h") == 0

    text = capsys.readouterr().out
    assert "Quarantined (1)" in text
    assert re.search(rf"{FILE_A}\s+{OWNER}\s+Filepipe.Test.EICAR-Body", text)
    lines = audit_lines(tmp_path)
    assert [(line["action"], line["result"]) for line in lines] == [
        ("start-rescan", "accepted"),
        ("quarantine", "quarantined"),
        ("rescan-result", "succeeded"),
    ]
    assert lines[0]["actor"]["principal"] == "arn:aws:iam::123456789012:user/operator"
    assert lines[0]["window"] == sfn.started[0]["input"]["window"]
    assert lines[1]["fileId"] == FILE_A
    assert lines[1]["signature"] == "Filepipe.Test.EICAR-Body"
    assert lines[2]["totals"]["infected"] == 1


def test_files_that_could_not_be_scanned_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    failures = [{"fileId": FILE_B, "ownerId": OWNER, "error": "ScannerUnavailable"}]
    sfn = FakeStepFunctions({"status": "SUCCEEDED", "output": output(failures=failures)})
    assert cli(sfn, tmp_path, "--since", "1h") == 1
    text = capsys.readouterr().out
    assert "Could not be scanned (1)" in text
    assert re.search(rf"{FILE_B}\s+{OWNER}\s+ScannerUnavailable", text)
    assert "they stay READY" in text


def test_a_run_stopped_at_its_limit_exits_1_and_says_how_to_go_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sfn = FakeStepFunctions({"status": "SUCCEEDED", "output": output(complete=False, cursor="abc")})
    assert cli(sfn, tmp_path, "--since", "7d", "--limit", "3") == 1
    assert "filepipe rescan --resume" in capsys.readouterr().out


def test_a_failed_execution_exits_1_with_its_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sfn = FakeStepFunctions(
        {"status": "FAILED", "error": "RescanInvalid", "cause": "rescan input refused: limit: too big"}
    )
    assert cli(sfn, tmp_path, "--since", "7d") == 1
    text = capsys.readouterr().out
    assert ": FAILED" in text
    assert "error: RescanInvalid: rescan input refused: limit: too big" in text
    assert audit_lines(tmp_path)[-1]["result"] == "failed"


def test_waiting_is_bounded_and_the_rescan_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sfn = FakeStepFunctions(polls=10**9)
    assert cli(sfn, tmp_path, "--since", "7d", "--timeout", "30") == 1
    captured = capsys.readouterr()
    assert ": RUNNING" in captured.out
    assert "Stopped waiting after 30.00 s" in captured.out
    assert "filepipe execution arn:aws:states:" in captured.out
    polls = sum(sfn.describes.values())
    assert 5 < polls < 40  # polling slows down, and stops at the deadline


def test_no_wait_starts_and_returns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sfn = FakeStepFunctions()
    assert cli(sfn, tmp_path, "--since", "7d", "--no-wait") == 0
    assert sfn.describes == {}
    text = capsys.readouterr().out
    assert "follow it: filepipe execution arn:aws:states:" in text


def test_json_prints_the_result_alone_on_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sfn = FakeStepFunctions()
    assert cli(sfn, tmp_path, "--since", "7d", "--json") == 0
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document["status"] == "SUCCEEDED"
    assert document["output"]["complete"] is True
    assert document["input"] == sfn.started[0]["input"]
    assert "Started rescan-" in captured.err


def test_the_audit_goes_to_stderr_by_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(FakeStepFunctions(), tmp_path, "--since", "7d", audit=False) == 0
    audit = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    assert [line["action"] for line in audit] == ["start-rescan", "rescan-result"]


def test_a_refusal_of_the_service_is_reported_not_raised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from botocore.exceptions import ClientError

    class Refusing(FakeStepFunctions):
        def start_execution(self, stateMachineArn: str, name: str, input: str) -> dict[str, Any]:
            raise ClientError(
                {"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "StartExecution"
            )

    assert cli(Refusing(), tmp_path, "--since", "7d") == 1
    assert "AccessDeniedException" in capsys.readouterr().err


# ------------------------------------------------------------------ console links
def test_a_stack_links_to_the_aws_console() -> None:
    target = Target("stack s", lambda service: None, {}, aws_console=True)
    arn = "arn:aws:states:eu-west-1:123456789012:execution:filepipe-RescanFiles:rescan-x"
    assert target.console_link(arn) == (
        f"https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/{arn}"
    )


def test_the_local_runtime_links_to_its_console_with_the_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = {
        "awsEndpoint": "http://127.0.0.1:8002",
        "outputs": {RESCAN_STATE_MACHINE_ARN: MACHINE},
        "console": {"url": "http://127.0.0.1:8000/console#token=secret-token", "token": "secret-token"},
    }
    (tmp_path / "runtime.json").write_text(json.dumps(state))
    sfn = FakeStepFunctions()
    code = main(
        ["rescan", "--since", "1h", "--state-dir", str(tmp_path), "--audit-log", str(tmp_path / "a.jsonl")],
        client_factory=clients(sfn),
        clock=frozen(),
    )
    assert code == 0
    name = sfn.started[0]["name"]
    assert f"console: http://127.0.0.1:8000/console/executions/{name}#token=secret-token" in (
        capsys.readouterr().out
    )
    assert "secret-token" not in (tmp_path / "a.jsonl").read_text()


# ------------------------------------------------------------------ resume
def _input(window: dict[str, str], cursor: str | None = None, limit: int = 100, dry: bool = False) -> Any:
    return {"window": window, "limit": limit, "dryRun": dry, "cursor": cursor, "reason": "operator"}


def test_resume_continues_the_newest_run_no_later_run_continued(tmp_path: Path) -> None:
    first, second = window_of(7), window_of(2)
    sfn = FakeStepFunctions()
    sfn.add("rescan-1", "SUCCEEDED", _input(first), output(first, complete=False, cursor="c1"))
    sfn.add("rescan-2", "SUCCEEDED", _input(first, "c1", 40), output(first, complete=False, cursor="c2"))
    # A failed continuation leaves c2 open; a complete run of another window has nothing to resume.
    sfn.add("rescan-3", "FAILED", _input(first, "c2", 40))
    sfn.add("rescan-4", "SUCCEEDED", _input(second), output(second))

    assert cli(sfn, tmp_path, "--resume") == 0
    [started] = sfn.started
    assert started["input"] == _input(first, "c2", 40)
    assert audit_lines(tmp_path)[0]["resumedFrom"] == "rescan-2"


def test_resume_keeps_the_dry_run_and_takes_a_new_limit(tmp_path: Path) -> None:
    window = window_of(3)
    sfn = FakeStepFunctions()
    sfn.add(
        "rescan-1",
        "SUCCEEDED",
        _input(window, dry=True),
        output(window, complete=False, cursor="c", dry_run=True),
    )
    assert cli(sfn, tmp_path, "--resume", "--limit", "7") == 0
    assert sfn.started[0]["input"] == _input(window, "c", 7, dry=True)


def test_resume_skips_a_run_a_later_one_finished(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    window = window_of(7)
    sfn = FakeStepFunctions()
    sfn.add("rescan-1", "SUCCEEDED", _input(window), output(window, complete=False, cursor="c1"))
    sfn.add("rescan-2", "SUCCEEDED", _input(window, "c1"), output(window))
    assert cli(sfn, tmp_path, "--resume") == 2
    assert "nothing to resume" in capsys.readouterr().err
    assert sfn.started == []


def test_resume_refuses_while_a_continuation_is_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    window = window_of(7)
    sfn = FakeStepFunctions()
    sfn.add("rescan-1", "SUCCEEDED", _input(window), output(window, complete=False, cursor="c1"))
    sfn.add("rescan-2", "RUNNING", _input(window, "c1"))
    assert cli(sfn, tmp_path, "--resume") == 2
    assert "rescan-1 is being resumed by rescan-2, which is still running" in capsys.readouterr().err


def test_resume_with_no_rescan_at_all_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(FakeStepFunctions(), tmp_path, "--resume") == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_a_scheduled_run_can_be_resumed_by_the_operator(tmp_path: Path) -> None:
    window = window_of(7)
    scheduled = {**_input(window), "reason": "definitions-update"}
    sfn = FakeStepFunctions()
    sfn.add(
        "definitions-0123456789abcdef", "SUCCEEDED", scheduled, output(window, complete=False, cursor="c")
    )
    point = find_resume_point(sfn, MACHINE)
    assert (point.execution, point.cursor, point.window) == ("definitions-0123456789abcdef", "c", window)
    assert cli(sfn, tmp_path, "--resume") == 0
    assert sfn.started[0]["input"]["reason"] == "operator"


# ------------------------------------------------------------------ rendering
def test_the_totals_table_adds_counts_the_contract_does_not_name() -> None:
    text = totals_table(
        {"examined": 9, "listed": 2, "bytes": 1536, "clean": 2, "infected": 0, "failed": 0, "skipped": 1}
    )
    header, _, row = text.splitlines()
    assert header.split() == ["EXAMINED", "LISTED", "BYTES", "CLEAN", "INFECTED", "FAILED", "SKIPPED"]
    assert row.split() == ["9", "2", "1.5", "KiB", "2", "0", "0", "1"]


def test_long_lists_say_how_many_were_left_out() -> None:
    infected = [{"fileId": f"F{i}", "ownerId": OWNER, "signature": "Sig"} for i in range(100)]
    body = output(infected=infected)
    body["totals"]["infected"] = 140
    text = rescan.report(rescan.Result("rescan-x", "arn", "SUCCEEDED", body))
    assert "Quarantined (140)" in text
    assert "... and 40 more" in text


def test_a_dry_run_report_says_nothing_changed() -> None:
    text = rescan.report(rescan.Result("rescan-x", "arn", "SUCCEEDED", output(dry_run=True, listed=12)))
    assert "(dry run)" in text
    assert "Dry run: 12 READY file(s) (3.5 MiB) would be scanned; nothing was scanned or changed." in text


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        ("SUCCEEDED", output(), 0),
        ("SUCCEEDED", output(infected=[{"fileId": FILE_A, "ownerId": OWNER, "signature": "S"}]), 0),
        ("SUCCEEDED", output(failures=[{"fileId": FILE_A, "ownerId": OWNER, "error": "E"}]), 1),
        ("SUCCEEDED", output(complete=False, cursor="c"), 1),
        ("SUCCEEDED", None, 1),
        ("FAILED", None, 1),
        ("TIMED_OUT", None, 1),
        ("ABORTED", None, 1),
        ("RUNNING", None, 1),
    ],
)
def test_exit_codes(status: str, body: dict[str, Any] | None, code: int) -> None:
    assert rescan.exit_code(rescan.Result("rescan-x", "arn", status, body)) == code


# ------------------------------------------------------------------ the real API shapes (moto)
@pytest.fixture
def moto_machine(aws_env: None) -> Iterator[tuple[Any, str]]:
    with mock_aws():
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        iam = boto3.client("iam", region_name="us-east-1")
        role = iam.create_role(RoleName="rescan", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        definition = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
        arn = sfn.create_state_machine(
            name="filepipe-RescanFiles", definition=json.dumps(definition), roleArn=role
        )["stateMachineArn"]
        yield sfn, arn


def test_against_moto_the_command_starts_a_run_resume_can_read(
    moto_machine: tuple[Any, str], tmp_path: Path
) -> None:
    sfn, arn = moto_machine
    argv = ["--state-dir", str(tmp_path), "--output", f"{RESCAN_STATE_MACHINE_ARN}={arn}"]
    argv += ["--audit-log", str(tmp_path / "audit.jsonl")]
    factory = clients(sfn)

    assert main(["rescan", "--since", "2h", "--no-wait", *argv], client_factory=factory, clock=frozen()) == 0

    [listed] = sfn.list_executions(stateMachineArn=arn)["executions"]
    assert _NAME.match(listed["name"])
    described = sfn.describe_execution(executionArn=listed["executionArn"])
    assert json.loads(described["input"]) == {
        "window": build_window(parse_moment("2h"), None, NOW),
        "limit": rescan.DEFAULT_LIMIT,
        "dryRun": False,
        "cursor": None,
        "reason": "operator",
    }
    with pytest.raises(UsageError, match="nothing to resume"):
        find_resume_point(sfn, arn)


def test_moment_text_is_kept_for_messages() -> None:
    assert parse_moment(" 7d ") == Moment("7d", age=timedelta(days=7))


def test_the_command_bounds_a_run_as_the_workflow_does() -> None:
    from rescan.logic import MAX_LIMIT as WORKFLOW_MAX_LIMIT

    assert rescan.MAX_LIMIT == WORKFLOW_MAX_LIMIT
