"""`filepipe replay`, `executions` and `execution` on the stack in moto, with the real workflow and clamd
(and, with Scanner GuardDuty, GuardDuty's stand-in)."""

from __future__ import annotations

import io
import json
import re
import socket
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from PIL import Image

from common.model import FileRef
from filepipe.clamd import LocalClamd, eicar_bytes
from filepipe.local.services.awslambda.invoke import InvokeResult
from filepipe.ops.audit import AuditLog
from filepipe.ops.cli import main
from filepipe.ops.replay import Action, Replayer, ReplayOptions
from filepipe.ops.target import (
    FAILED_EXECUTIONS_QUEUE_URL,
    FILES_TABLE_NAME,
    INGEST_BUCKET_NAME,
    SCANNER,
    START_DEAD_LETTER_QUEUE_URL,
    STATE_MACHINE_ARN,
)
from tests.stack import reset_function_caches
from tests.workflow.conftest import PipelineFactory
from tests.workflow.harness import Pipeline, crash

STACK = "filepipe-test"


def _jpeg(width: int = 96, height: int = 64) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(buffer, "JPEG")
    return buffer.getvalue()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _outputs(pipeline: Pipeline) -> dict[str, str]:
    return {
        STATE_MACHINE_ARN: pipeline.state_machine,
        FAILED_EXECUTIONS_QUEUE_URL: pipeline.stack.physical("FailedExecutionsQueue"),
        START_DEAD_LETTER_QUEUE_URL: pipeline.stack.physical("StartDeadLetterQueue"),
        FILES_TABLE_NAME: pipeline.stack.physical("FilesTable"),
        INGEST_BUCKET_NAME: pipeline.ingest,
        SCANNER: pipeline.scanner,
    }


def _deploy_outputs(pipeline: Pipeline) -> None:
    """A CloudFormation stack carrying the outputs, so `--stack` reads them as it would on AWS."""
    body = {
        "Resources": {
            "Marker": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {"Name": f"/{STACK}/deployed", "Type": "String", "Value": "yes"},
            }
        },
        "Outputs": {name: {"Value": value} for name, value in _outputs(pipeline).items()},
    }
    pipeline.stack.client("cloudformation").create_stack(StackName=STACK, TemplateBody=json.dumps(body))


def _clients(pipeline: Pipeline) -> Any:
    """The stack's clients, GuardDuty's being the stand-in (moto has no SendObjectMalwareScan)."""

    def client(service: str) -> Any:
        if service == "guardduty" and pipeline.guardduty is not None:
            return pipeline.guardduty
        return pipeline.stack.client(service)

    return client


def _cli(pipeline: Pipeline, *argv: str) -> int:
    return main([*argv, "--stack", STACK], client_factory=_clients(pipeline))


def _replay_cli(pipeline: Pipeline, audit: Path, *argv: str) -> int:
    return _cli(pipeline, "replay", "--receive-wait", "0", "--audit-log", str(audit), *argv)


def _audit_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _replayer(pipeline: Pipeline, stepfunctions: Any = None) -> Replayer:
    return Replayer(
        stepfunctions=stepfunctions or pipeline.sfn,
        sqs=pipeline.sqs,
        records=pipeline.records,
        store=_store(pipeline),
        state_machine_arn=pipeline.state_machine,
        queue_urls={
            "failed": pipeline.stack.physical("FailedExecutionsQueue"),
            "start": pipeline.stack.physical("StartDeadLetterQueue"),
        },
        audit=AuditLog(io.StringIO(), {"user": "tester", "principal": "test"}),
        guardduty=pipeline.guardduty,
    )


def _store(pipeline: Pipeline) -> Any:
    from common.storage import ObjectStore

    return ObjectStore(pipeline.s3)


def _options(**overrides: Any) -> ReplayOptions:
    return ReplayOptions(**{"receive_wait_seconds": 0, "accept_timeout": 5.0, **overrides})


def _execution_names(pipeline: Pipeline) -> list[str]:
    runs = pipeline.sfn.list_executions(stateMachineArn=pipeline.state_machine)["executions"]
    return sorted(run["name"] for run in runs)


def _queue_size(pipeline: Pipeline, logical_id: str) -> int:
    attributes = pipeline.sqs.get_queue_attributes(
        QueueUrl=pipeline.stack.physical(logical_id),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def _visible_bodies(pipeline: Pipeline, logical_id: str) -> list[str]:
    """Every message visible now; they are made visible again so the queue is left as it was."""
    url = pipeline.stack.physical(logical_id)
    messages: list[dict[str, Any]] = []
    for _ in range(10):
        batch = pipeline.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        if not batch.get("Messages"):
            break
        messages.extend(batch["Messages"])
    for message in messages:
        pipeline.sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    return [message["Body"] for message in messages]


class Switch:
    """A scan that crashes while on: fails a run fast (no retry) and lets a replay succeed after."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.on = True
        pipeline.router.replace(pipeline.scan_function, self)

    def __call__(self, spec: Any, event: dict[str, Any]) -> InvokeResult | None:
        return crash("RuntimeError", "scanner crashed") if self.on else None


def _failed_upload(pipeline: Pipeline) -> tuple[FileRef, dict[str, Any]]:
    """Upload, let the run fail, and deliver its status change to the failed-executions DLQ."""
    ref, execution = pipeline.process(_jpeg())
    assert execution["status"] == "FAILED"
    assert pipeline.record(ref)["status"] == "FAILED"
    pipeline.publish_status_change(execution)
    return ref, execution


# ---------------------------------------------------------------------------------------------- acceptance
@pytest.mark.parametrize("scanner", ["ClamAV"], indirect=True)
def test_clamd_down_fails_the_upload_and_replay_after_it_returns_brings_it_to_ready(
    make_pipeline: PipelineFactory,
    clamd: LocalClamd,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pipeline = make_pipeline(ClamdAddress=f"tcp://127.0.0.1:{_closed_port()}")
    _deploy_outputs(pipeline)
    ref, execution = pipeline.process(_jpeg())
    assert execution["status"] == "FAILED"
    assert execution["error"] == "ScannerUnavailable"
    pipeline.publish_status_change(execution)
    [message] = [json.loads(body) for body in _visible_bodies(pipeline, "FailedExecutionsQueue")]
    assert "detail" not in message  # the target's InputPath passes the event's detail only
    assert (message["name"], message["status"], message["error"]) == (
        ref.file_id,
        "FAILED",
        "ScannerUnavailable",
    )
    assert json.loads(message["input"])["file"]["fileId"] == ref.file_id

    monkeypatch.setenv("CLAMD_ADDRESS", clamd.address)  # clamd is back
    reset_function_caches()
    audit = tmp_path / "audit.jsonl"
    capsys.readouterr()
    assert _replay_cli(pipeline, audit, "--wait", "60") == 0

    replay_name = f"{ref.file_id}-replay-1"
    assert pipeline.wait(replay_name)["status"] == "SUCCEEDED"
    record = pipeline.record(ref)
    assert record["status"] == "READY"
    assert "error" not in record
    assert _queue_size(pipeline, "FailedExecutionsQueue") == 0
    summary = capsys.readouterr().out
    assert re.search(rf"failed\s+{ref.file_id}\s+start\s+{replay_name}\s+deleted\s+SUCCEEDED", summary)
    assert "1 message(s): 1 start; 0 left in the queue" in summary
    lines = _audit_lines(audit)
    assert [(line["action"], line["result"]) for line in lines] == [
        ("start-execution", "accepted"),
        ("delete-message", "deleted"),
    ]
    for line in lines:
        assert line["fileId"] == ref.file_id
        assert line["actor"]["principal"].startswith("arn:aws:")
        assert line["actor"]["user"]
        assert line["actor"]["target"] == f"stack {STACK}"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])

    # A second replay finds nothing to do and starts nothing.
    assert _replay_cli(pipeline, audit, "--wait", "5") == 0
    assert "nothing to replay" in capsys.readouterr().out
    assert _execution_names(pipeline) == sorted([ref.file_id, replay_name])

    # A late duplicate of the failure event: the file is READY, so the message just goes.
    pipeline.publish_status_change(execution)
    assert _replay_cli(pipeline, audit) == 0
    assert re.search(rf"{ref.file_id}\s+already done\s+-\s+deleted", capsys.readouterr().out)
    assert _queue_size(pipeline, "FailedExecutionsQueue") == 0
    assert _execution_names(pipeline) == sorted([ref.file_id, replay_name])
    assert pipeline.record(ref)["status"] == "READY"
    assert len(pipeline.sent_emails()) == 1  # READY once, however often it is replayed

    # Both runs of the file, and a status filter.
    assert _cli(pipeline, "executions", "--file", ref.file_id) == 0
    listing = capsys.readouterr().out
    assert re.search(rf"{replay_name}\s+SUCCEEDED", listing)
    assert re.search(rf"{ref.file_id}\s+FAILED", listing)
    assert _cli(pipeline, "executions", "--status", "FAILED", "--json") == 0
    assert [e["name"] for e in json.loads(capsys.readouterr().out)] == [ref.file_id]


@pytest.mark.parametrize("scanner", ["ClamAV"], indirect=True)
def test_execution_shows_every_state_with_its_duration_and_the_error(
    make_pipeline: PipelineFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = make_pipeline(ClamdAddress=f"tcp://127.0.0.1:{_closed_port()}")
    _deploy_outputs(pipeline)
    ref, execution = pipeline.process(_jpeg())
    assert execution["status"] == "FAILED"
    history = pipeline.sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("StateEntered")]
    assert entered == [
        "Mark processing",
        "Validate file",
        "Choose scanner",
        "Which scanner?",
        "Scan for malware",
        "Record failure",
        "Processing failed",
    ]

    capsys.readouterr()
    assert _cli(pipeline, "execution", ref.file_id) == 0
    report = capsys.readouterr().out
    duration = r"\d+ ms|\d+\.\d\d s"
    assert re.search(r"Status\s+FAILED", report)
    assert re.search(r"Error\s+ScannerUnavailable: ", report)
    for index, name in enumerate(entered, start=1):
        assert re.search(rf"^\s*{index}\s+{re.escape(name)}\s+\w+\s+\w+\s+({duration})\s", report, re.M), name
    scan_row = next(line for line in report.splitlines() if re.match(r"\s*5\s+Scan for malware", line))
    assert re.search(rf"Task\s+caught\s+({duration})\s+2\s+ScannerUnavailable: ", scan_row)  # 2 retries
    fail_row = next(line for line in report.splitlines() if re.match(r"\s*7\s+Processing failed", line))
    assert re.search(r"Fail\s+failed\s+.*ScannerUnavailable", fail_row)
    assert report.count("input:  {") == len(entered)

    assert _cli(pipeline, "execution", execution["executionArn"], "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in shown["states"]] == entered
    assert all(s["durationSeconds"] is not None and s["durationSeconds"] >= 0 for s in shown["states"])
    assert shown["states"][4]["retries"] == 2
    assert shown["states"][4]["error"] == "ScannerUnavailable"
    assert json.loads(shown["states"][0]["input"])["file"]["fileId"] == ref.file_id

    assert _cli(pipeline, "execution", "no-such-run") == 1
    assert "no execution no-such-run" in capsys.readouterr().err


def test_a_successful_run_shows_its_parallel_branches(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    _deploy_outputs(pipeline)
    ref, execution = pipeline.process(_jpeg())
    assert execution["status"] == "SUCCEEDED"
    capsys.readouterr()
    assert _cli(pipeline, "execution", ref.file_id, "--json") == 0
    states = {s["name"]: s for s in json.loads(capsys.readouterr().out)["states"]}
    for name in ("Make thumbnails and metadata", "Make thumbnails", "Extract metadata", "Notify owner"):
        assert states[name]["status"] == "ok", name
        assert states[name]["error"] is None
    assert states["Make thumbnails and metadata"]["type"] == "Parallel"
    assert json.loads(states["Make thumbnails"]["output"])["thumbnails"]


# ---------------------------------------------------------------------------------------------- safety
def test_poison_messages_are_reported_and_left_in_place(
    pipeline: Pipeline, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _deploy_outputs(pipeline)
    failed_url = pipeline.stack.physical("FailedExecutionsQueue")
    gone = pipeline.upload(_jpeg())
    pipeline.queued_start_messages()  # the upload event is not delivered: no run for this file
    pipeline.s3.delete_object(Bucket=gone.bucket, Key=gone.key, VersionId=gone.version)
    poison = {
        "not json": "{this is not json",
        "no input": json.dumps({"name": "x", "status": "FAILED", "input": None}),
        "no file": json.dumps({"name": "y", "status": "FAILED", "input": '{"other": 1}'}),
        "file gone": json.dumps({"name": gone.file_id, "input": json.dumps({"file": gone.to_state()})}),
    }
    for body in poison.values():
        pipeline.sqs.send_message(QueueUrl=failed_url, MessageBody=body)
    pipeline.sqs.send_message(
        QueueUrl=pipeline.stack.physical("StartDeadLetterQueue"), MessageBody='{"detail-type": "Nope"}'
    )

    audit = tmp_path / "audit.jsonl"
    capsys.readouterr()
    assert _replay_cli(pipeline, audit) == 1  # something needs a human

    out = capsys.readouterr().out
    assert "5 message(s): 5 unreplayable; 5 left in the queue" in out
    assert "body is not JSON" in out
    assert "message has no execution input" in out
    assert "execution input has no file reference" in out
    assert "the upload is gone from the ingest bucket" in out
    assert "not an upload event" in out
    assert sorted(_visible_bodies(pipeline, "FailedExecutionsQueue")) == sorted(poison.values())
    assert _visible_bodies(pipeline, "StartDeadLetterQueue") == ['{"detail-type": "Nope"}']
    assert _execution_names(pipeline) == []
    lines = _audit_lines(audit)
    assert len(lines) == 5
    assert {(line["action"], line["result"]) for line in lines} == {("leave-message", "unreplayable")}
    [gone_line] = [line for line in lines if line.get("fileId") == gone.file_id]
    assert f"s3://{gone.bucket}/{gone.key} {gone.version}" in gone_line["reason"]


def test_dry_run_changes_nothing_then_the_real_run_does_it(pipeline: Pipeline) -> None:
    scan = Switch(pipeline)
    failed, _ = _failed_upload(pipeline)
    scan.on = False
    done, execution = pipeline.process(_jpeg())
    pipeline.publish_status_change({**execution, "status": "FAILED"})  # a stale event for a READY file
    before = {name: pipeline.record(ref) for name, ref in (("failed", failed), ("done", done))}

    replayer = _replayer(pipeline)
    planned = replayer.run(_options(dry_run=True))

    by_file = {o.file_id: o for o in planned}
    assert by_file[failed.file_id].action is Action.START
    assert by_file[failed.file_id].execution == f"{failed.file_id}-replay-1"
    assert by_file[done.file_id].action is Action.ALREADY_DONE
    assert not any(o.deleted for o in planned)
    assert _queue_size(pipeline, "FailedExecutionsQueue") == 2
    assert len(_visible_bodies(pipeline, "FailedExecutionsQueue")) == 2  # visible again at once
    assert _execution_names(pipeline) == sorted([failed.file_id, done.file_id])
    assert {name: pipeline.record(ref) for name, ref in (("failed", failed), ("done", done))} == before

    outcomes = replayer.run(_options(wait=30))
    by_file = {o.file_id: o for o in outcomes}
    assert by_file[failed.file_id].action is Action.START
    assert by_file[failed.file_id].result == "SUCCEEDED"
    assert by_file[done.file_id].action is Action.ALREADY_DONE
    assert all(o.deleted for o in outcomes)
    assert pipeline.record(failed)["status"] == "READY"
    assert _queue_size(pipeline, "FailedExecutionsQueue") == 0


def test_file_and_limit_select_which_messages_are_handled(pipeline: Pipeline) -> None:
    scan = Switch(pipeline)
    first, _ = _failed_upload(pipeline)
    second, _ = _failed_upload(pipeline)
    third, _ = _failed_upload(pipeline)
    scan.on = False
    replayer = _replayer(pipeline)

    only_second = replayer.run(_options(file_id=second.file_id))
    assert [(o.file_id, o.action) for o in only_second] == [(second.file_id, Action.START)]
    assert len(_visible_bodies(pipeline, "FailedExecutionsQueue")) == 2  # the others, untouched

    one_more = replayer.run(_options(limit=1))
    assert len(one_more) == 1
    assert one_more[0].file_id in (first.file_id, third.file_id)
    assert len(_visible_bodies(pipeline, "FailedExecutionsQueue")) == 1
    for ref in (second, first if one_more[0].file_id == first.file_id else third):
        assert pipeline.wait(f"{ref.file_id}-replay-1")["status"] == "SUCCEEDED"


def test_two_messages_for_one_file_give_one_replay(pipeline: Pipeline) -> None:
    scan = Switch(pipeline)
    ref, execution = _failed_upload(pipeline)
    pipeline.publish_status_change(execution)  # EventBridge delivers at least once
    scan.on = False

    outcomes = _replayer(pipeline).run(_options())

    assert sorted(o.action.value for o in outcomes) == ["duplicate", "start"]
    assert all(o.deleted for o in outcomes)
    assert pipeline.wait(f"{ref.file_id}-replay-1")["status"] == "SUCCEEDED"
    assert _execution_names(pipeline) == sorted([ref.file_id, f"{ref.file_id}-replay-1"])


def test_a_file_with_a_run_in_progress_is_left_for_later(pipeline: Pipeline) -> None:
    scan = Switch(pipeline)
    ref, _ = _failed_upload(pipeline)
    scan.on = False
    running = RunningElsewhere(pipeline.sfn, f"{ref.file_id}-replay-1", pipeline.state_machine)

    [outcome] = _replayer(pipeline, stepfunctions=running).run(_options())

    assert outcome.action is Action.IN_PROGRESS
    assert not outcome.deleted
    assert _execution_names(pipeline) == [ref.file_id]
    assert len(_visible_bodies(pipeline, "FailedExecutionsQueue")) == 1


def test_an_upload_that_never_started_is_started_from_the_start_dlq(pipeline: Pipeline) -> None:
    ref = pipeline.upload(_jpeg())
    [message] = pipeline.queued_start_messages()
    pipeline.sqs.send_message(
        QueueUrl=pipeline.stack.physical("StartDeadLetterQueue"), MessageBody=message["Body"]
    )

    [outcome] = _replayer(pipeline).run(_options(queues=("start",), wait=30))

    assert (outcome.action, outcome.execution, outcome.result) == (Action.START, ref.file_id, "SUCCEEDED")
    assert outcome.deleted
    assert pipeline.record(ref)["status"] == "READY"
    assert _queue_size(pipeline, "StartDeadLetterQueue") == 0


# ---------------------------------------------------------------------------------------------- redrive
class RunningElsewhere:
    """moto's client, plus one execution that RUNNING listings report (as if another replay were on)."""

    def __init__(self, stepfunctions: Any, name: str, state_machine: str) -> None:
        self._sfn = stepfunctions
        self._item = {
            "name": name,
            "executionArn": state_machine.replace(":stateMachine:", ":execution:") + f":{name}",
            "status": "RUNNING",
        }

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sfn, name)

    def list_executions(self, **kwargs: Any) -> dict[str, Any]:
        page = dict(self._sfn.list_executions(**kwargs))
        if kwargs.get("statusFilter") == "RUNNING":
            page["executions"] = [*page.get("executions", []), self._item]
        return page


class Redrivable:
    """moto's client, where the failed run stopped inside a Task (timed out there, say) and redrive
    answers as told: ``accept`` it, refuse it with an error code, or (``None``) moto's own answer."""

    def __init__(self, stepfunctions: Any, refusal: str | None, accept: bool, scan_state: str) -> None:
        self._sfn = stepfunctions
        self._scan_state = scan_state
        self._refusal = refusal
        self._accept = accept
        self.redriven: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sfn, name)

    def get_execution_history(self, **kwargs: Any) -> dict[str, Any]:
        events = self._sfn.get_execution_history(**kwargs)["events"]
        scan = next(
            e for e in events if e.get("stateEnteredEventDetails", {}).get("name") == self._scan_state
        )
        cut = [e for e in events if e["id"] <= scan["id"]]
        stopped = {"id": scan["id"] + 1, "previousEventId": scan["id"], "type": "ExecutionTimedOut"}
        return {"events": [*cut, {**stopped, "timestamp": scan["timestamp"]}]}

    def redrive_execution(self, executionArn: str) -> dict[str, Any]:
        if self._refusal:
            error = {"Error": {"Code": self._refusal, "Message": "refused"}}
            raise ClientError(error, "RedriveExecution")
        if not self._accept:
            return dict(self._sfn.redrive_execution(executionArn=executionArn))
        self.redriven.append(executionArn)
        return {"redriveDate": "now"}

    def describe_execution(self, **kwargs: Any) -> dict[str, Any]:
        described = dict(self._sfn.describe_execution(**kwargs))
        if kwargs["executionArn"] in self.redriven:
            described.update(status="RUNNING", redriveCount=1)
        return described


@pytest.mark.parametrize(
    ("refusal", "accept", "expected"),
    [
        (None, True, Action.REDRIVE),
        ("ExecutionNotRedrivable", False, Action.START),
        ("UnknownOperationException", False, Action.START),  # an endpoint without RedriveExecution
    ],
    ids=["redriven", "not-redrivable", "no-redrive-operation"],
)
def test_redrive_where_the_service_allows_it_else_a_new_run(
    pipeline: Pipeline, refusal: str | None, accept: bool, expected: Action
) -> None:
    scan = Switch(pipeline)
    ref, execution = _failed_upload(pipeline)
    scan.on = False
    stepfunctions = Redrivable(pipeline.sfn, refusal, accept, pipeline.scan_state)
    replayer = _replayer(pipeline, stepfunctions=stepfunctions)

    [outcome] = replayer.run(_options())

    assert outcome.action is expected
    assert outcome.deleted
    if expected is Action.REDRIVE:
        assert stepfunctions.redriven == [execution["executionArn"]]
        assert outcome.execution == ref.file_id
        assert _execution_names(pipeline) == [ref.file_id]
    else:
        assert outcome.execution == f"{ref.file_id}-replay-1"
        assert pipeline.wait(f"{ref.file_id}-replay-1")["status"] == "SUCCEEDED"


def test_no_redrive_for_a_run_that_reached_the_fail_state(pipeline: Pipeline) -> None:
    scan = Switch(pipeline)
    at_fail_state, _ = _failed_upload(pipeline)  # moto's real history: it ended in "Processing failed"
    scan.on = False
    real_history = Redrivable(pipeline.sfn, None, True, pipeline.scan_state)
    real_history.get_execution_history = pipeline.sfn.get_execution_history  # type: ignore[method-assign]

    [first] = _replayer(pipeline, real_history).run(_options(file_id=at_fail_state.file_id))

    assert (first.action, first.execution) == (Action.START, f"{at_fail_state.file_id}-replay-1")
    assert real_history.redriven == []
    assert pipeline.wait(f"{at_fail_state.file_id}-replay-1")["status"] == "SUCCEEDED"


# ------------------------------------------------------------------------------------------------- owner told
@pytest.mark.parametrize("upload", ["jpeg", "eicar"], ids=["ready", "quarantined"])
def test_a_final_file_whose_owner_was_never_told_gets_a_run_that_only_notifies(
    pipeline: Pipeline, upload: str
) -> None:
    """A failure message of a run that failed in the notify step (as runs did before a notification could
    no longer fail one): the file is final, the owner was never told, so replay starts a run to tell them."""
    pipeline.router.replace("NotifyFunction", lambda spec, event: crash())
    data = {"jpeg": _jpeg(), "eicar": eicar_bytes()}[upload]
    ref, execution = pipeline.process(data)
    final = {"jpeg": "READY", "eicar": "QUARANTINED"}[upload]
    assert pipeline.record(ref)["status"] == final
    pipeline.publish_status_change({**execution, "status": "FAILED", "error": "RuntimeError"})
    pipeline.router.replace("NotifyFunction", lambda spec, event: None)  # the notify step works again
    watch = pipeline.watch_file_processed()

    [outcome] = _replayer(pipeline).run(_options(wait=30))

    assert (outcome.action, outcome.execution, outcome.result) == (
        Action.START,
        f"{ref.file_id}-replay-1",
        "SUCCEEDED",
    )
    assert outcome.deleted
    assert f"{final} but its owner was never told" in outcome.detail
    assert len(pipeline.sent_emails()) == 1
    assert [event["status"] for event in pipeline.file_processed(watch)] == [final]
    assert pipeline.router.calls["ValidateFunction"] == 1  # nothing but the notification ran again
    assert pipeline.record(ref)["status"] == final

    # Another copy of the same failure message: the owner was told, so it just goes.
    pipeline.publish_status_change({**execution, "status": "FAILED", "error": "RuntimeError"})
    [again] = _replayer(pipeline).run(_options())
    assert (again.action, again.deleted) == (Action.ALREADY_DONE, True)
    assert len(pipeline.sent_emails()) == 1


# ---------------------------------------------------------------------------------------------- timeouts
def test_a_run_that_times_out_lands_in_the_dlq_and_replay_finishes_the_file(pipeline: Pipeline) -> None:
    """The definition's TimeoutSeconds (shortened here to a few seconds) ends a stuck run as TIMED_OUT, and
    replay redrives it."""
    definition = pipeline.sfn.describe_state_machine(stateMachineArn=pipeline.state_machine)["definition"]
    pipeline.sfn.update_state_machine(
        stateMachineArn=pipeline.state_machine,
        definition=json.dumps({**json.loads(definition), "TimeoutSeconds": 5}),
    )
    stuck = threading.Event()

    def hang_once(spec: Any, event: dict[str, Any]) -> InvokeResult | None:
        if not stuck.is_set():
            stuck.wait(30)  # until the test has seen the run time out
            return crash("RuntimeError", "gave up")
        return None

    pipeline.router.replace("ValidateFunction", hang_once)
    ref, execution = pipeline.process(_jpeg())
    stuck.set()

    assert execution["status"] == "TIMED_OUT"
    # No step recorded an outcome (on a busy machine the limit can pass before "Mark processing" ends).
    assert pipeline.record(ref)["status"] in {"UPLOADING", "PROCESSING"}
    pipeline.publish_status_change(execution)
    [message] = [json.loads(body) for body in _visible_bodies(pipeline, "FailedExecutionsQueue")]
    assert (message["name"], message["status"]) == (ref.file_id, "TIMED_OUT")

    # New runs get the whole time limit back; the redriven one keeps its own definition, as on AWS.
    pipeline.sfn.update_state_machine(stateMachineArn=pipeline.state_machine, definition=definition)
    [outcome] = _replayer(pipeline).run(_options(wait=60))

    # The redrive resumed the same run where it timed out, and its 5 s limit started again: counted from
    # the run's start, it would have timed out at once.
    assert (outcome.action, outcome.execution, outcome.result, outcome.deleted) == (
        Action.REDRIVE,
        ref.file_id,
        "SUCCEEDED",
        True,
    )
    redriven = pipeline.sfn.describe_execution(executionArn=execution["executionArn"])
    assert redriven["redriveDate"] - redriven["startDate"] >= timedelta(seconds=5)
    assert _execution_names(pipeline) == [ref.file_id]
    assert pipeline.record(ref)["status"] == "READY"
    assert len(pipeline.sent_emails()) == 1
    assert _queue_size(pipeline, "FailedExecutionsQueue") == 0
