"""The notify step in moto: a notification never changes the outcome nor fails the run; channels apart."""

from __future__ import annotations

import json
from typing import Any

import pytest

from common.errors import ServiceThrottled
from filepipe.local.services.awslambda.invoke import InvokeResult
from notify.handler import BusPublisher, SesMailer
from tests import images
from tests.workflow.conftest import PipelineFactory
from tests.workflow.harness import OWNER_EMAIL, SENDER, Pipeline, crash

# The notify state's retrier for ServiceThrottled, as the definition declares it.
THROTTLED_RETRIES = 5
FIRST_WAIT_SECONDS = 20
MAX_WAIT_SECONDS = 300


def _entered(pipeline: Pipeline, execution: dict[str, Any]) -> list[str]:
    history = pipeline.sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("StateEntered")]


def _counted_failures(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The channel of each NotificationsFailed metric the functions emitted (CloudWatch EMF lines)."""
    channels = []
    for line in capsys.readouterr().out.splitlines():
        if '"NotificationsFailed"' in line and line.startswith("{"):
            emitted = json.loads(line)
            assert emitted["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "filepipe"
            channels.append(emitted["channel"])
    return sorted(channels)


def _assert_ends_quietly(pipeline: Pipeline, execution: dict[str, Any]) -> None:
    """The run succeeded, so its status change matches no failed-executions rule: no DLQ message."""
    assert execution["status"] == "SUCCEEDED"
    pipeline.publish_status_change(execution)
    assert pipeline.dlq_messages() == []


def test_without_a_sender_there_is_no_email_and_the_event_still_tells(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline(SenderEmail="")
    watch = pipeline.watch_file_processed()
    ref, execution = pipeline.process(images.jpeg((120, 90)), name="cat.jpg")

    _assert_ends_quietly(pipeline, execution)
    assert pipeline.record(ref)["status"] == "READY"
    assert pipeline.sent_emails() == []
    [event] = pipeline.file_processed(watch)
    assert (event["fileId"], event["status"], event["name"]) == (ref.file_id, "READY", "cat.jpg")


def test_with_a_sender_the_owner_gets_one_email_and_one_event(pipeline: Pipeline) -> None:
    watch = pipeline.watch_file_processed()
    ref, execution = pipeline.process(images.jpeg((120, 90)), name="cat.jpg")

    _assert_ends_quietly(pipeline, execution)
    [email] = pipeline.sent_emails()
    assert (email.source, email.destinations["ToAddresses"]) == (SENDER, [OWNER_EMAIL])
    assert email.subject == "Your file cat.jpg is ready"
    assert [event["fileId"] for event in pipeline.file_processed(watch)] == [ref.file_id]


def test_an_email_ses_refuses_is_counted_and_the_run_still_succeeds(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline.stack.client("ses").delete_identity(Identity=SENDER)  # the sender's link was never clicked
    watch = pipeline.watch_file_processed()
    capsys.readouterr()
    ref, execution = pipeline.process(images.jpeg((120, 90)))

    _assert_ends_quietly(pipeline, execution)
    assert pipeline.record(ref)["status"] == "READY"
    assert pipeline.sent_emails() == []
    assert len(pipeline.file_processed(watch)) == 1  # the other channel is not held back
    assert pipeline.router.calls["NotifyFunction"] == 1  # a refusal is final: not retried
    assert "Owner not notified" not in _entered(pipeline, execution)
    assert _counted_failures(capsys) == ["email"]


def test_a_throttled_email_is_retried_later_and_sent_once(
    pipeline: Pipeline, retry_waits: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    send = SesMailer.send
    throttled: list[str] = []

    def throttled_once(mailer: SesMailer, to: str, subject: str, body: str) -> None:
        if not throttled:
            throttled.append(to)
            raise ServiceThrottled("SES throttled sending (injected)")  # after the SDK's own retries
        send(mailer, to, subject, body)

    monkeypatch.setattr(SesMailer, "send", throttled_once)
    watch = pipeline.watch_file_processed()
    ref, execution = pipeline.process(images.jpeg((120, 90)))

    _assert_ends_quietly(pipeline, execution)
    assert pipeline.router.calls["NotifyFunction"] == 2
    assert len(pipeline.sent_emails()) == 1
    assert len(pipeline.file_processed(watch)) == 1  # published on the first try, not again on the retry
    assert len(retry_waits) == 1
    assert 0 <= retry_waits[0] <= FIRST_WAIT_SECONDS
    assert pipeline.record(ref)["status"] == "READY"


def test_an_email_throttled_past_every_retry_is_counted_once_and_the_run_succeeds(
    pipeline: Pipeline,
    retry_waits: list[float],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def always_throttled(mailer: SesMailer, to: str, subject: str, body: str) -> None:
        raise ServiceThrottled("SES throttled sending (injected)")

    monkeypatch.setattr(SesMailer, "send", always_throttled)
    watch = pipeline.watch_file_processed()
    capsys.readouterr()
    ref, execution = pipeline.process(images.jpeg((120, 90)))

    _assert_ends_quietly(pipeline, execution)
    assert pipeline.record(ref)["status"] == "READY"
    notify_calls = [e for e in pipeline.router.events["NotifyFunction"] if "missed" not in e]
    assert len(notify_calls) == 1 + THROTTLED_RETRIES
    assert len(retry_waits) == THROTTLED_RETRIES
    assert all(0 <= wait <= MAX_WAIT_SECONDS for wait in retry_waits)
    assert len(pipeline.file_processed(watch)) == 1
    assert _entered(pipeline, execution)[-3:] == [
        "Notify owner",
        "Report missed notification",
        "Owner not notified",
    ]
    assert _counted_failures(capsys) == ["email"]


def test_an_event_the_bus_refuses_does_not_hold_back_the_email(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refused(publisher: BusPublisher, detail_type: str, detail: dict[str, Any]) -> None:
        raise RuntimeError(f"EventBridge refused {detail_type} (injected)")

    monkeypatch.setattr(BusPublisher, "publish", refused)
    capsys.readouterr()
    ref, execution = pipeline.process(images.jpeg((120, 90)))

    _assert_ends_quietly(pipeline, execution)
    assert pipeline.record(ref)["status"] == "READY"
    assert len(pipeline.sent_emails()) == 1
    assert _counted_failures(capsys) == ["event"]


@pytest.mark.parametrize("upload", ["jpeg", "exe"], ids=["ready", "rejected"])
def test_a_notify_step_that_keeps_crashing_leaves_the_outcome_and_ends_the_run_quietly(
    pipeline: Pipeline, upload: str, capsys: pytest.CaptureFixture[str]
) -> None:
    def crash_unless_reporting(spec: Any, event: dict[str, Any]) -> InvokeResult | None:
        return None if "missed" in event else crash()

    pipeline.router.replace("NotifyFunction", crash_unless_reporting)
    capsys.readouterr()
    data = {"jpeg": images.jpeg((100, 100)), "exe": images.exe()}[upload]
    ref, execution = pipeline.process(data)

    _assert_ends_quietly(pipeline, execution)
    assert pipeline.record(ref)["status"] == {"jpeg": "READY", "exe": "REJECTED"}[upload]
    assert pipeline.sent_emails() == []
    [report] = [e for e in pipeline.router.events["NotifyFunction"] if "missed" in e]
    assert report["missed"]["Error"] == "RuntimeError"
    assert "Record failure" not in _entered(pipeline, execution)
    assert _counted_failures(capsys) == ["email", "event"]


def test_a_report_that_fails_too_still_ends_the_run_quietly(pipeline: Pipeline) -> None:
    pipeline.router.replace("NotifyFunction", lambda spec, event: crash())
    ref, execution = pipeline.process(images.jpeg((100, 100)))

    _assert_ends_quietly(pipeline, execution)
    assert pipeline.record(ref)["status"] == "READY"
    assert _entered(pipeline, execution)[-1] == "Owner not notified"
