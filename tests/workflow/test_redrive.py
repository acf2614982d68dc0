"""RedriveExecution as Step Functions does it, on the real workflow in moto: where a redriven run resumes,
what it does not run again, and every refusal with AWS's error code and reason."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from PIL import Image

from common.model import FileRef
from filepipe.local.services.awslambda.invoke import InvokeResult, invoke_in_process
from filepipe.local.services.stepfunctions import redrive as stepfunctions_redrive
from filepipe.ops.audit import AuditLog
from filepipe.ops.executions import describe
from filepipe.ops.replay import Action, Replayer, ReplayOptions
from tests.workflow.harness import Pipeline

Event = dict[str, Any]


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (96, 64), (30, 120, 200)).save(buffer, "JPEG")
    return buffer.getvalue()


class Hold:
    """A step whose first matching call waits until the test has stopped the run, then goes on.

    ``done_first``: the real handler has run before the wait (the step's work is done, its state never
    ends); otherwise it runs after the wait, once the run is stopped.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        logical_id: str,
        *,
        done_first: bool = False,
        when: Callable[[Event], bool] = lambda event: True,
    ) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self._done_first = done_first
        self._when = when
        self._armed = True
        pipeline.router.replace(logical_id, self)

    def __call__(self, spec: Any, event: Event) -> InvokeResult | None:
        if not self._armed or not self._when(event):
            return None
        self._armed = False
        result = invoke_in_process(spec, event) if self._done_first else None
        self.entered.set()
        self.release.wait(30)
        return result


def _stopped_while_held(pipeline: Pipeline, hold: Hold, exited: str | None = None) -> tuple[FileRef, Event]:
    """Upload, let the run reach the held step (and state ``exited`` end), stop it there (StopExecution),
    and wait for ABORTED."""
    ref = pipeline.upload(_jpeg())
    assert pipeline.start(pipeline.queued_start_messages()) == {"batchItemFailures": []}
    assert hold.entered.wait(30), "the run never reached the held step"
    arn = pipeline.execution_arn(ref.file_id)
    for _ in range(600):
        if exited is None or exited in _exited(_history(pipeline, arn)):
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"{exited} never ended")
    pipeline.sfn.stop_execution(executionArn=arn)
    hold.release.set()
    execution = pipeline.wait(ref.file_id)
    assert execution["status"] == "ABORTED"
    return ref, execution


def _history(pipeline: Pipeline, arn: str) -> list[Event]:
    events: list[Event] = pipeline.sfn.get_execution_history(executionArn=arn)["events"]
    return events


def _exited(events: list[Event]) -> list[str]:
    return [e["stateExitedEventDetails"]["name"] for e in events if e["type"].endswith("StateExited")]


def _entered(events: list[Event]) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]


def _refusal(pipeline: Pipeline, arn: str, **kwargs: Any) -> tuple[int, str, str]:
    with pytest.raises(ClientError) as caught:
        pipeline.sfn.redrive_execution(executionArn=arn, **kwargs)
    error = caught.value.response
    return error["ResponseMetadata"]["HTTPStatusCode"], error["Error"]["Code"], error["Error"]["Message"]


def _replayer(pipeline: Pipeline, audit: io.StringIO) -> Replayer:
    from common.storage import ObjectStore

    return Replayer(
        stepfunctions=pipeline.sfn,
        sqs=pipeline.sqs,
        records=pipeline.records,
        store=ObjectStore(pipeline.s3),
        state_machine_arn=pipeline.state_machine,
        queue_urls={
            "failed": pipeline.stack.physical("FailedExecutionsQueue"),
            "start": pipeline.stack.physical("StartDeadLetterQueue"),
        },
        audit=AuditLog(audit, {"user": "tester", "principal": "test"}),
        guardduty=pipeline.guardduty,
    )


def _options(**overrides: Any) -> ReplayOptions:
    return ReplayOptions(**{"receive_wait_seconds": 0, "accept_timeout": 5.0, **overrides})


def _moto_execution(pipeline: Pipeline, arn: str) -> Any:
    """moto's own record of an execution, for rules about times a test cannot wait for."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    from tests.stack import REGION

    return stepfunctions_parser_backends[DEFAULT_ACCOUNT_ID][REGION].describe_execution(arn)


# ---------------------------------------------------------------------------------------------- resuming
def test_replay_redrives_a_run_stopped_at_promote_from_promote_and_validates_nothing_again(
    pipeline: Pipeline,
) -> None:
    hold = Hold(pipeline, "PromoteFunction")
    ref, execution = _stopped_while_held(pipeline, hold)
    assert pipeline.record(ref)["status"] == "PROCESSING"
    pipeline.publish_status_change(execution)
    audit = io.StringIO()

    [outcome] = _replayer(pipeline, audit).run(_options(wait=30))

    assert (outcome.action, outcome.execution, outcome.result) == (Action.REDRIVE, ref.file_id, "SUCCEEDED")
    assert outcome.deleted
    assert outcome.detail == f"redrove {ref.file_id} from Promote original"
    arn = execution["executionArn"]
    assert outcome.execution_arn == arn  # the same execution, not a new one
    runs = pipeline.sfn.list_executions(stateMachineArn=pipeline.state_machine)["executions"]
    assert [(run["name"], run["status"], run["redriveCount"]) for run in runs] == [
        (ref.file_id, "SUCCEEDED", 1)
    ]
    for logical_id in ("RecordFunction", "ValidateFunction", pipeline.scan_function, "ThumbnailsFunction"):
        # Mark processing and Record ready; the states that had succeeded did not run again.
        assert pipeline.router.calls[logical_id] == (2 if logical_id == "RecordFunction" else 1), logical_id
    assert pipeline.router.calls["PromoteFunction"] == 2
    events = _history(pipeline, arn)
    redriven = next(e for e in events if e["type"] == "ExecutionRedriven")
    assert redriven["executionRedrivenEventDetails"] == {"redriveCount": 1}
    after = events[events.index(redriven) + 1 :]
    assert _entered(after) == ["Promote original", "Record ready", "Notify owner"]
    assert _entered(events).count("Validate file") == 1
    described = pipeline.sfn.describe_execution(executionArn=arn)
    assert described["redriveCount"] == 1
    assert described["redriveDate"] >= described["startDate"]
    assert described["redriveStatus"] == "NOT_REDRIVABLE"
    assert described["redriveStatusReason"] == "Execution is SUCCEEDED and cannot be redriven"
    assert json.loads(described["input"]) == json.loads(execution["input"])  # the same input
    # `filepipe execution` shows the stopped attempt of the state, then the redriven one that ended.
    states = describe(pipeline.sfn, pipeline.state_machine, arn).states
    first, second = [state for state in states if state.name == "Promote original"]
    assert (first.exited, second.status) == (None, "ok")
    assert pipeline.record(ref)["status"] == "READY"
    assert len(pipeline.sent_emails()) == 1
    results = [(line["action"], line["result"]) for line in map(json.loads, audit.getvalue().splitlines())]
    assert results == [("redrive-execution", "accepted"), ("delete-message", "deleted")]


def test_a_redrive_runs_again_only_the_parallel_branch_that_had_not_finished(pipeline: Pipeline) -> None:
    hold = Hold(pipeline, "ThumbnailsFunction")
    ref, execution = _stopped_while_held(pipeline, hold, exited="Extract metadata")
    arn = execution["executionArn"]

    pipeline.sfn.redrive_execution(executionArn=arn)

    assert pipeline.wait(ref.file_id)["status"] == "SUCCEEDED"
    assert pipeline.router.calls["MetadataFunction"] == 1  # its branch had succeeded
    assert pipeline.router.calls["ThumbnailsFunction"] == 2
    events = _history(pipeline, arn)
    redriven = next(i for i, e in enumerate(events) if e["type"] == "ExecutionRedriven")
    assert _entered(events[redriven:]) == [
        "Make thumbnails and metadata",
        "Make thumbnails",  # resumed at the task, not at the branch's Choice
        "Promote original",
        "Record ready",
        "Notify owner",
    ]
    output = json.loads(pipeline.sfn.describe_execution(executionArn=arn)["output"])
    thumbnails, metadata_result = output["analysis"]
    assert [t["size"] for t in thumbnails["thumbnails"]] == [256, 1024]
    assert metadata_result == {"metadata": {"width": 96, "height": 64}}
    assert pipeline.record(ref)["status"] == "READY"


@pytest.mark.parametrize(
    ("logical_id", "state", "when"),
    [
        ("RecordFunction", "Record ready", lambda event: event.get("outcome") == "READY"),
        ("NotifyFunction", "Notify owner", lambda event: True),
    ],
    ids=["record", "notify"],
)
def test_a_step_done_before_the_stop_is_repeated_by_the_redrive_and_counts_once(
    pipeline: Pipeline, logical_id: str, state: str, when: Callable[[Event], bool]
) -> None:
    """The step did its work, then the run stopped before the state ended: the redrive runs it again."""
    watch = pipeline.watch_file_processed()
    hold = Hold(pipeline, logical_id, done_first=True, when=when)
    ref, execution = _stopped_while_held(pipeline, hold)
    if logical_id == "NotifyFunction":
        assert len(pipeline.sent_emails()) == 1

    pipeline.sfn.redrive_execution(executionArn=execution["executionArn"])

    assert pipeline.wait(ref.file_id)["status"] == "SUCCEEDED"
    events = _history(pipeline, execution["executionArn"])
    redriven = next(i for i, e in enumerate(events) if e["type"] == "ExecutionRedriven")
    assert _entered(events[redriven:])[0] == state
    record = pipeline.record(ref)
    assert record["status"] == "READY"
    assert len(pipeline.sent_emails()) == 1
    assert [event["status"] for event in pipeline.file_processed(watch)] == ["READY"]


def test_a_run_that_reached_the_fail_state_is_redriven_into_it_again(pipeline: Pipeline) -> None:
    """What replay avoids: the unsuccessful state is the workflow's Fail state, so a redrive fails again."""
    pipeline.router.replace(pipeline.scan_function, lambda spec, event: _crash())
    ref, execution = pipeline.process(_jpeg())
    assert execution["status"] == "FAILED"
    calls = dict(pipeline.router.calls)
    arn = execution["executionArn"]

    pipeline.sfn.redrive_execution(executionArn=arn)

    again = pipeline.wait(ref.file_id)
    assert (again["status"], again["error"]) == ("FAILED", execution["error"])
    assert dict(pipeline.router.calls) == calls  # nothing before the Fail state ran again
    events = _history(pipeline, arn)
    redriven = next(i for i, e in enumerate(events) if e["type"] == "ExecutionRedriven")
    assert _entered(events[redriven:]) == ["Processing failed"]
    assert pipeline.sfn.describe_execution(executionArn=arn)["redriveCount"] == 1


def _crash() -> InvokeResult:
    body = {"errorType": "RuntimeError", "errorMessage": "scanner crashed", "stackTrace": []}
    return InvokeResult(json.dumps(body).encode(), "Unhandled")


# ---------------------------------------------------------------------------------------------- refusals
def test_a_succeeded_execution_is_not_redriven(pipeline: Pipeline) -> None:
    _ref, execution = pipeline.process(_jpeg())
    assert execution["status"] == "SUCCEEDED"
    arn = execution["executionArn"]
    events = _history(pipeline, arn)

    assert _refusal(pipeline, arn) == (
        400,
        "ExecutionNotRedrivable",
        "Execution is SUCCEEDED and cannot be redriven",
    )
    described = pipeline.sfn.describe_execution(executionArn=arn)
    assert (described["status"], described["redriveCount"], described["redriveStatus"]) == (
        "SUCCEEDED",
        0,
        "NOT_REDRIVABLE",
    )
    assert "redriveDate" not in described
    assert _history(pipeline, arn) == events
    assert pipeline.router.calls["ValidateFunction"] == 1


def test_a_running_execution_is_not_redriven(pipeline: Pipeline) -> None:
    hold = Hold(pipeline, pipeline.scan_function)
    ref = pipeline.upload(_jpeg())
    assert pipeline.start(pipeline.queued_start_messages()) == {"batchItemFailures": []}
    assert hold.entered.wait(30)
    arn = pipeline.execution_arn(ref.file_id)
    try:
        assert _refusal(pipeline, arn) == (
            400,
            "ExecutionNotRedrivable",
            "Execution is RUNNING and cannot be redriven",
        )
        assert pipeline.sfn.describe_execution(executionArn=arn)["redriveStatusReason"] == (
            "Execution is RUNNING and cannot be redriven"
        )
    finally:
        hold.release.set()
    assert pipeline.wait(ref.file_id)["status"] == "SUCCEEDED"


def test_the_redrive_window_closes_14_days_after_the_stop_and_replay_then_starts_a_new_run(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    hold = Hold(pipeline, "PromoteFunction")
    ref, execution = _stopped_while_held(pipeline, hold)
    arn = execution["executionArn"]
    stopped = execution["stopDate"]
    monkeypatch.setattr(stepfunctions_redrive, "clock", lambda: stopped + timedelta(days=14))
    assert pipeline.sfn.describe_execution(executionArn=arn)["redriveStatus"] == "REDRIVABLE"

    monkeypatch.setattr(stepfunctions_redrive, "clock", lambda: stopped + timedelta(days=14, seconds=1))

    assert _refusal(pipeline, arn) == (400, "ExecutionNotRedrivable", "Execution redrivable period exceeded")
    described = pipeline.sfn.describe_execution(executionArn=arn)
    assert (described["redriveStatus"], described["redriveStatusReason"]) == (
        "NOT_REDRIVABLE",
        "Execution redrivable period exceeded",
    )
    # Replay takes AWS's refusal as its cue to start a new run of the same input.
    pipeline.publish_status_change(execution)
    audit = io.StringIO()
    [outcome] = _replayer(pipeline, audit).run(_options(wait=30))
    assert (outcome.action, outcome.execution, outcome.result) == (
        Action.START,
        f"{ref.file_id}-replay-1",
        "SUCCEEDED",
    )
    refused = json.loads(audit.getvalue().splitlines()[0])
    assert (refused["action"], refused["result"], refused["reason"]) == (
        "redrive-execution",
        "not-redrivable",
        "ExecutionNotRedrivable",
    )
    assert pipeline.sfn.describe_execution(executionArn=arn)["status"] == "ABORTED"


@pytest.mark.parametrize(
    "rule",
    ["open a year", "started before redrive existed", "history event limit"],
)
def test_the_other_limits_of_redrive_refuse_with_their_reasons(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, rule: str
) -> None:
    hold = Hold(pipeline, "PromoteFunction")
    _ref, execution = _stopped_while_held(pipeline, hold)
    arn = execution["executionArn"]
    moto_execution = _moto_execution(pipeline, arn)
    if rule == "open a year":
        moto_execution.start_date -= timedelta(days=366)
        expected = "Execution has exceeded the max execution time"
    elif rule == "started before redrive existed":
        moto_execution.start_date = stepfunctions_redrive.REDRIVE_LAUNCH - timedelta(seconds=1)
        expected = "Execution was started before the launch of RedriveExecution"
    else:
        monkeypatch.setattr(stepfunctions_redrive, "HISTORY_EVENTS_LIMIT", len(_history(pipeline, arn)))
        expected = "Execution history event limit exceeded"

    assert _refusal(pipeline, arn) == (400, "ExecutionNotRedrivable", expected)
    assert pipeline.sfn.describe_execution(executionArn=arn)["redriveStatusReason"] == expected


def test_the_open_executions_quota_refuses_with_execution_limit_exceeded(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    hold = Hold(pipeline, "PromoteFunction")
    _ref, execution = _stopped_while_held(pipeline, hold)
    monkeypatch.setattr(stepfunctions_redrive, "OPEN_EXECUTIONS_QUOTA", 0)

    status, code, _message = _refusal(pipeline, execution["executionArn"])

    assert (status, code) == (400, "ExecutionLimitExceeded")
    assert pipeline.sfn.describe_execution(executionArn=execution["executionArn"])["status"] == "ABORTED"


def test_an_unknown_execution_does_not_exist(pipeline: Pipeline) -> None:
    status, code, _message = _refusal(pipeline, pipeline.execution_arn("no-such-run"))
    assert (status, code) == (400, "ExecutionDoesNotExist")


def test_an_express_workflow_execution_is_not_redriven(pipeline: Pipeline) -> None:
    definition = {"StartAt": "Stop", "States": {"Stop": {"Type": "Fail", "Error": "Nope"}}}
    express = pipeline.sfn.create_state_machine(
        name="express",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/express",
        type="EXPRESS",
    )["stateMachineArn"]
    arn = pipeline.sfn.start_execution(stateMachineArn=express, name="once")["executionArn"]
    for _ in range(200):
        if pipeline.sfn.describe_execution(executionArn=arn)["status"] != "RUNNING":
            break
        time.sleep(0.05)

    status, code, _message = _refusal(pipeline, arn)

    assert (status, code) == (400, "ExecutionNotRedrivable")


def test_a_repeated_client_token_gets_the_same_answer_and_redrives_once(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    hold = Hold(pipeline, "PromoteFunction")
    ref, execution = _stopped_while_held(pipeline, hold)
    arn = execution["executionArn"]

    first = pipeline.sfn.redrive_execution(executionArn=arn, clientToken="retry-of-one-call")
    assert pipeline.wait(ref.file_id)["status"] == "SUCCEEDED"
    again = pipeline.sfn.redrive_execution(executionArn=arn, clientToken="retry-of-one-call")

    assert again["redriveDate"] == first["redriveDate"]
    assert pipeline.sfn.describe_execution(executionArn=arn)["redriveCount"] == 1
    assert pipeline.router.calls["PromoteFunction"] == 2
    assert _refusal(pipeline, arn, clientToken="another-call")[1] == "ExecutionNotRedrivable"
    later = first["redriveDate"] + stepfunctions_redrive.CLIENT_TOKEN_LIFETIME + timedelta(seconds=1)
    monkeypatch.setattr(stepfunctions_redrive, "clock", lambda: later)
    assert _refusal(pipeline, arn, clientToken="retry-of-one-call")[1] == "ExecutionNotRedrivable"
