"""Scanner GuardDuty: the run awaits GuardDuty's scan result with a task token, whichever arrives first.

GuardDuty's stand-in (tests/workflow/harness.py) reports each upload's scan on the default bus as GuardDuty
does; EventBridge's delivery to the verdict function and the verdict function are the template's own.
"""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pytest

from common.model import FileRef
from filepipe.local.services.guardduty import events as guardduty_events
from filepipe.ops.audit import AuditLog
from filepipe.ops.replay import Action, Replayer, ReplayOptions
from tests import images
from tests.workflow.harness import GuardDutyStandIn, Pipeline

pytestmark = pytest.mark.parametrize("scanner", ["GuardDuty"], indirect=True)

THREAT = "EICAR-Test-File (not a virus)"
ENGINE = "GuardDuty Malware Protection for S3"


def _standin(pipeline: Pipeline) -> GuardDutyStandIn:
    assert pipeline.guardduty is not None
    return pipeline.guardduty


def _actions(pipeline: Pipeline) -> list[str]:
    """What each delivery of a scan result did, in order."""
    return [json.loads(result.payload)["action"] for result in _standin(pipeline).results]


def _output(execution: dict[str, Any]) -> dict[str, Any]:
    output: dict[str, Any] = json.loads(execution["output"])
    return output


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
    return ReplayOptions(**{"receive_wait_seconds": 0, "accept_timeout": 5.0, "wait": 60.0, **overrides})


def _audited(audit: io.StringIO) -> list[tuple[str, str]]:
    return [(line["action"], line["result"]) for line in map(json.loads, audit.getvalue().splitlines())]


def _shorten(pipeline: Pipeline, **changes: Any) -> str:
    """Deploy a copy of the definition with shorter limits; returns the definition to restore."""
    definition = str(
        pipeline.sfn.describe_state_machine(stateMachineArn=pipeline.state_machine)["definition"]
    )
    shortened = json.loads(definition)
    if "verdict_seconds" in changes:
        choose = shortened["States"]["Choose scanner"]["Parameters"]
        assert choose["verdictTimeoutSeconds.$"] == "States.StringToJson('900')"  # the template's default
        choose["verdictTimeoutSeconds.$"] = f"States.StringToJson('{changes['verdict_seconds']}')"
    if "run_seconds" in changes:
        shortened["TimeoutSeconds"] = changes["run_seconds"]
    pipeline.sfn.update_state_machine(
        stateMachineArn=pipeline.state_machine, definition=json.dumps(shortened)
    )
    return definition


def _restore(pipeline: Pipeline, definition: str) -> None:
    pipeline.sfn.update_state_machine(stateMachineArn=pipeline.state_machine, definition=definition)


# ---------------------------------------------------------------------------------------------- verdicts
def test_a_clean_upload_is_ready_with_guarddutys_verdict(pipeline: Pipeline) -> None:
    ref, execution = pipeline.process(images.jpeg((320, 240)))

    assert execution["status"] == "SUCCEEDED"
    assert _output(execution)["scan"] == {
        "verdict": "CLEAN",
        "signature": None,
        "engine": ENGINE,
        "sha256": None,
    }
    assert pipeline.record(ref)["status"] == "READY"
    assert pipeline.router.calls["ScanVerdictFunction"] == 1  # the run asked once
    assert _actions(pipeline) == ["stored and handed to the waiting run"]
    assert [a["action"] for a in _standin(pipeline).awaits] == ["waiting for the scan result"]
    assert "ScanFunction" not in pipeline.stack.stack.functions  # no ClamAV in GuardDuty mode


def test_threats_found_quarantine_the_file_with_the_threats_name(pipeline: Pipeline) -> None:
    _standin(pipeline).force(guardduty_events.THREATS_FOUND, [THREAT])
    ref, execution = pipeline.process(images.jpeg((64, 64)))

    assert execution["status"] == "SUCCEEDED"
    assert _output(execution)["scan"]["signature"] == THREAT
    record = pipeline.record(ref)
    assert record["status"] == "QUARANTINED"
    assert record["error"] == {"code": "MALWARE_FOUND", "message": f"Malware detected: {THREAT}"}
    assert pipeline.keys(pipeline.clean) == []
    assert pipeline.keys(pipeline.quarantine) == [f"quarantine/{ref.owner_id}/{ref.file_id}"]


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (guardduty_events.UNSUPPORTED, "ScanIncomplete"),
        (guardduty_events.ACCESS_DENIED, "ScannerUnavailable"),
        (guardduty_events.FAILED, "ScannerUnavailable"),
    ],
)
def test_a_scan_without_a_verdict_fails_the_run_closed_and_is_not_retried(
    pipeline: Pipeline, status: str, error: str
) -> None:
    _standin(pipeline).force(status)
    ref, execution = pipeline.process(images.jpeg((64, 64)))

    assert (execution["status"], execution["error"]) == ("FAILED", error)
    record = pipeline.record(ref)
    assert record["status"] == "FAILED"
    assert record["error"]["code"] == error
    assert status in record["error"]["message"]  # SendTaskFailure's cause reaches the record
    assert pipeline.router.calls["ScanVerdictFunction"] == 1  # the same stored result would only fail again
    assert pipeline.ingest_versions(ref) == [ref.version]  # nothing lost: the upload waits for a replay
    assert pipeline.keys(pipeline.clean) == []
    pipeline.publish_status_change(execution)
    [message] = pipeline.dlq_messages()
    assert (message["name"], message["error"]) == (ref.file_id, error)


def test_repeated_and_late_results_change_nothing(pipeline: Pipeline) -> None:
    """EventBridge delivers at least once, and GuardDuty may report a version again: one outcome."""
    standin = _standin(pipeline)
    standin.copies = 3
    ref, execution = pipeline.process(images.jpeg((64, 64)))
    standin.join()
    standin.copies = 1
    etag = pipeline.s3.head_object(Bucket=ref.bucket, Key=ref.key, VersionId=ref.version)["ETag"]
    standin.force(guardduty_events.THREATS_FOUND, [THREAT])
    standin.deliver(standin.scan(ref, b"", etag))  # another event for the same version, another result

    assert execution["status"] == "SUCCEEDED"
    assert _actions(pipeline) == [
        "stored and handed to the waiting run",
        "repeated and handed again",
        "repeated and handed again",
        "ignored: another scan's result stands",
    ]
    assert pipeline.record(ref)["status"] == "READY"
    assert pipeline.keys(pipeline.quarantine) == []
    assert len(pipeline.sent_emails()) == 1


def test_a_result_reported_before_the_run_asks_completes_it_at_once(pipeline: Pipeline) -> None:
    standin = _standin(pipeline)
    standin.delivery = standin.AT_UPLOAD
    ref, execution = pipeline.process(images.jpeg((64, 64)))

    assert execution["status"] == "SUCCEEDED"
    assert _actions(pipeline) == ["stored; no run waits"]
    assert [a["action"] for a in standin.awaits] == ["completed with the stored result"]
    assert pipeline.record(ref)["status"] == "READY"


def test_a_result_for_another_version_of_the_key_does_not_complete_the_run(pipeline: Pipeline) -> None:
    standin = _standin(pipeline)
    standin.delivery = standin.HELD
    photo = images.jpeg((64, 64))
    ref = pipeline.upload(photo)
    [message] = pipeline.queued_start_messages()
    assert pipeline.start([message]) == {"batchItemFailures": []}
    standin.await_count(1)
    # The browser posts the form again: a second version of the key, which GuardDuty scans too.
    second = pipeline.s3.put_object(Bucket=ref.bucket, Key=ref.key, Body=photo, ContentType="image/jpeg")
    pipeline.queued_start_messages()  # its start event names the same file: the run exists already
    standin.force(guardduty_events.THREATS_FOUND, [THREAT])
    other = FileRef(ref.bucket, ref.key, second["VersionId"], ref.owner_id, ref.file_id)
    standin.deliver(standin.scan(other, photo, second["ETag"]))

    assert _actions(pipeline) == ["stored; no run waits"]
    time.sleep(1)
    assert (
        pipeline.sfn.describe_execution(executionArn=pipeline.execution_arn(ref.file_id))["status"]
        == "RUNNING"
    )
    [first] = standin.held
    standin.deliver(first)
    execution = pipeline.wait(ref.file_id)

    assert execution["status"] == "SUCCEEDED"
    assert pipeline.record(ref)["status"] == "READY"
    assert pipeline.keys(pipeline.quarantine) == []


# ---------------------------------------------------------------------------------------------- no verdict
def test_no_result_within_the_timeout_fails_closed_and_replay_asks_guardduty_for_a_new_scan(
    pipeline: Pipeline,
) -> None:
    standin = _standin(pipeline)
    standin.delivery = standin.HELD  # the scan result never comes
    definition = _shorten(pipeline, verdict_seconds=2)
    ref, execution = pipeline.process(images.jpeg((64, 64)))

    assert (execution["status"], execution["error"]) == ("FAILED", "States.Timeout")
    record = pipeline.record(ref)
    assert (record["status"], record["error"]["code"]) == ("FAILED", "States.Timeout")
    pipeline.publish_status_change(execution)
    _restore(pipeline, definition)
    standin.delivery = standin.AFTER_AWAIT
    [planned] = _replayer(pipeline, io.StringIO()).run(_options(dry_run=True))
    assert "would ask GuardDuty for a new scan" in planned.detail
    assert standin.scan_requests == []  # a dry run asks for nothing
    audit = io.StringIO()

    [outcome] = _replayer(pipeline, audit).run(_options())

    assert (outcome.action, outcome.execution, outcome.result) == (
        Action.START,
        f"{ref.file_id}-replay-1",
        "SUCCEEDED",
    )
    assert "asked GuardDuty for a new scan" in outcome.detail
    assert standin.scan_requests == [{"Bucket": ref.bucket, "Key": ref.key, "VersionId": ref.version}]
    assert _audited(audit) == [
        ("request-scan", "accepted"),
        ("start-execution", "accepted"),
        ("delete-message", "deleted"),
    ]
    assert pipeline.record(ref)["status"] == "READY"


@pytest.mark.parametrize("status", [guardduty_events.FAILED, guardduty_events.ACCESS_DENIED])
def test_replay_of_a_failed_scan_waits_for_the_new_scan_not_the_old_result(
    pipeline: Pipeline, status: str
) -> None:
    standin = _standin(pipeline)
    standin.force(status)
    ref, execution = pipeline.process(images.jpeg((64, 64)))
    assert (execution["status"], execution["error"]) == ("FAILED", "ScannerUnavailable")
    pipeline.publish_status_change(execution)
    audit = io.StringIO()

    [outcome] = _replayer(pipeline, audit).run(_options())

    assert (outcome.action, outcome.result) == (Action.START, "SUCCEEDED")
    assert standin.scan_requests == [{"Bucket": ref.bucket, "Key": ref.key, "VersionId": ref.version}]
    # The stored result had failed the first run: the new run did not take it, it waited for the new scan.
    assert [a["action"] for a in standin.awaits] == ["waiting for the scan result", "waiting for a new scan"]
    assert _actions(pipeline) == [
        "stored and handed to the waiting run",
        "stored and handed to the waiting run",
    ]
    assert pipeline.record(ref)["status"] == "READY"


def test_a_repeat_of_a_failed_result_does_not_fail_the_replayed_run(pipeline: Pipeline) -> None:
    """The stale token: the old result's repeat goes to the task it failed (closed), not to the new run's."""
    standin = _standin(pipeline)
    standin.force(guardduty_events.FAILED)
    standin.delivery = standin.HELD
    ref, _ = _started(pipeline)
    [failed] = standin.held
    standin.held.clear()
    standin.deliver(failed)
    execution = pipeline.wait(ref.file_id)
    assert execution["error"] == "ScannerUnavailable"
    pipeline.publish_status_change(execution)
    audit = io.StringIO()

    [outcome] = _replayer(pipeline, audit).run(_options(wait=0))
    standin.await_count(2)
    standin.deliver(failed)  # EventBridge delivers the old result again
    time.sleep(1)
    replay = pipeline.execution_arn(f"{ref.file_id}-replay-1")
    assert pipeline.sfn.describe_execution(executionArn=replay)["status"] == "RUNNING"
    [new_scan] = standin.held
    standin.deliver(new_scan)

    assert outcome.action is Action.START
    assert pipeline.wait(f"{ref.file_id}-replay-1")["status"] == "SUCCEEDED"
    assert _actions(pipeline) == [
        "stored and handed to the waiting run",
        "repeated and handed again",
        "stored and handed to the waiting run",
    ]
    assert json.loads(standin.results[1].payload)["delivered"] is False  # that task was closed
    assert pipeline.record(ref)["status"] == "READY"


def test_replay_of_an_unsupported_object_asks_for_no_new_scan_and_fails_again(pipeline: Pipeline) -> None:
    standin = _standin(pipeline)
    standin.force(guardduty_events.UNSUPPORTED)
    ref, execution = pipeline.process(images.jpeg((64, 64)))
    assert execution["error"] == "ScanIncomplete"
    pipeline.publish_status_change(execution)
    audit = io.StringIO()

    [outcome] = _replayer(pipeline, audit).run(_options())

    assert (outcome.action, outcome.result) == (Action.START, "FAILED")
    assert standin.scan_requests == []
    assert [a["action"] for a in standin.awaits] == [
        "waiting for the scan result",
        "completed with the stored result",
    ]
    assert pipeline.record(ref)["error"]["code"] == "ScanIncomplete"


def test_a_run_timed_out_while_waiting_is_redriven_with_its_redrive_count_and_a_new_scan(
    pipeline: Pipeline,
) -> None:
    standin = _standin(pipeline)
    standin.delivery = standin.HELD
    definition = _shorten(pipeline, run_seconds=6)
    ref, execution = pipeline.process(images.jpeg((64, 64)))
    assert execution["status"] == "TIMED_OUT"
    pipeline.publish_status_change(execution)
    _restore(pipeline, definition)
    standin.delivery = standin.AFTER_AWAIT
    audit = io.StringIO()

    [outcome] = _replayer(pipeline, audit).run(_options())

    assert (outcome.action, outcome.execution, outcome.result) == (Action.REDRIVE, ref.file_id, "SUCCEEDED")
    assert standin.scan_requests == [{"Bucket": ref.bucket, "Key": ref.key, "VersionId": ref.version}]
    awaited = pipeline.router.events["ScanVerdictFunction"]
    assert [event["redriveCount"] for event in awaited] == [0, 1]  # $$.Execution.RedriveCount
    assert awaited[0]["taskToken"] != awaited[1]["taskToken"]
    assert pipeline.record(ref)["status"] == "READY"


def _started(pipeline: Pipeline) -> tuple[FileRef, str]:
    """Upload and start the run; returns once it asks for the verdict."""
    standin = _standin(pipeline)
    asked = len(standin.awaits)
    ref = pipeline.upload(images.jpeg((64, 64)))
    assert pipeline.start(pipeline.queued_start_messages()) == {"batchItemFailures": []}
    standin.await_count(asked + 1)
    return ref, pipeline.execution_arn(ref.file_id)
