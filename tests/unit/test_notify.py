"""The notify step's logic and adapters: each channel once, alone; refusals counted, throttles retried."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from common.errors import ServiceThrottled
from common.model import Channel, FileRef, new_file_id
from common.records import FileRecords, now_iso
from common.settings import SettingsError, load_settings
from filepipe.local.services.awslambda.invoke import invoke_in_process
from notify.handler import BusPublisher, NotifySettings, SesMailer
from notify.logic import Delivery, EmailRefused, Result, missed, notify
from tests.stack import REGION, StackFixture, step_event

OWNER = "6a3e1c2b-9d8f-4e7a-b5c4-3d2e1f0a9b8c"
OWNER_EMAIL = "owner@example.com"
SENDER = "filepipe@example.com"
THROTTLED = ServiceThrottled("throttled (injected)")


class Outbox:
    """A mailer that records what it sends and fails as told, one planned failure per call."""

    def __init__(self, *failures: Exception | None) -> None:
        self.sent: list[tuple[str, str]] = []
        self._failures = list(failures)

    def send(self, to: str, subject: str, body: str) -> None:
        failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            raise failure
        self.sent.append((to, subject))


class Bus:
    """An event publisher that records what it publishes and fails as told, one planned failure per call."""

    def __init__(self, *failures: Exception | None) -> None:
        self.published: list[dict[str, Any]] = []
        self._failures = list(failures)

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            raise failure
        self.published.append(detail)


@pytest.fixture
def records(stack: StackFixture) -> FileRecords:
    return FileRecords(stack.client("dynamodb"), stack.physical("FilesTable"))


def _final_file(records: FileRecords, status: str = "READY", email: str | None = OWNER_EMAIL) -> FileRef:
    file_id = new_file_id()
    ref = FileRef("ingest", f"uploads/{OWNER}/{file_id}", "v1", OWNER, file_id)
    now = now_iso()
    records.create(
        {
            "fileId": file_id,
            "ownerId": OWNER,
            "ownerEmail": email,
            "name": "cat.jpg",
            "status": status,
            "sourceVersion": ref.version,
            "createdAt": now,
            "updatedAt": now,
        }
    )
    return ref


def _results(deliveries: list[Delivery]) -> dict[Channel, Result]:
    return {delivery.channel: delivery.result for delivery in deliveries}


def test_each_channel_sends_once_however_often_the_step_runs(records: FileRecords) -> None:
    ref = _final_file(records)
    outbox, bus = Outbox(), Bus()

    first = notify(records, outbox, bus, ref)
    again = notify(records, outbox, bus, ref)

    assert _results(first) == {Channel.EVENT: Result.SENT, Channel.EMAIL: Result.SENT}
    assert _results(again) == {Channel.EVENT: Result.ALREADY_SENT, Channel.EMAIL: Result.ALREADY_SENT}
    assert outbox.sent == [(OWNER_EMAIL, "Your file cat.jpg is ready")]
    assert [(e["fileId"], e["status"]) for e in bus.published] == [(ref.file_id, "READY")]


def test_a_throttled_email_is_owed_to_the_retry_and_the_published_event_is_not_sent_again(
    records: FileRecords,
) -> None:
    ref = _final_file(records)
    outbox, bus = Outbox(THROTTLED), Bus()

    with pytest.raises(ServiceThrottled):
        notify(records, outbox, bus, ref)
    assert (outbox.sent, len(bus.published)) == ([], 1)
    retried = notify(records, outbox, bus, ref)

    assert _results(retried) == {Channel.EVENT: Result.ALREADY_SENT, Channel.EMAIL: Result.SENT}
    assert (len(outbox.sent), len(bus.published)) == (1, 1)


def test_an_event_that_failed_is_published_by_the_retry_and_the_sent_email_is_not_sent_again(
    records: FileRecords,
) -> None:
    ref = _final_file(records)
    outbox, bus = Outbox(), Bus(RuntimeError("EventBridge refused (injected)"))

    with pytest.raises(RuntimeError, match="refused"):
        notify(records, outbox, bus, ref)
    assert (len(outbox.sent), bus.published) == (1, [])  # the email went out all the same
    retried = notify(records, outbox, bus, ref)

    assert _results(retried) == {Channel.EVENT: Result.SENT, Channel.EMAIL: Result.ALREADY_SENT}
    assert (len(outbox.sent), len(bus.published)) == (1, 1)


def test_throttling_wins_over_another_error_so_the_workflow_retries(records: FileRecords) -> None:
    ref = _final_file(records)
    with pytest.raises(ServiceThrottled):
        notify(records, Outbox(THROTTLED), Bus(RuntimeError("refused (injected)")), ref)


def test_an_email_ses_refuses_is_reported_once_and_never_retried(records: FileRecords) -> None:
    ref = _final_file(records)
    outbox = Outbox(EmailRefused("MessageRejected", "Email address is not verified."))

    first = notify(records, outbox, Bus(), ref)
    again = notify(records, outbox, Bus(), ref)

    [refused] = [d for d in first if d.channel is Channel.EMAIL]
    assert (refused.result, refused.failed) == (Result.REFUSED, True)
    assert "MessageRejected" in refused.reason
    assert _results(again)[Channel.EMAIL] is Result.ALREADY_SENT
    assert outbox.sent == []


@pytest.mark.parametrize(
    ("mailer", "email", "reason"),
    [(None, OWNER_EMAIL, "no sender"), (Outbox(), None, "no email address")],
    ids=["no sender", "no address"],
)
def test_without_a_sender_or_an_address_only_the_event_goes(
    records: FileRecords, mailer: Outbox | None, email: str | None, reason: str
) -> None:
    ref = _final_file(records, email=email)
    bus = Bus()

    deliveries = notify(records, mailer, bus, ref)

    [off] = [d for d in deliveries if d.channel is Channel.EMAIL]
    assert off.result is Result.OFF
    assert reason in off.reason
    assert not off.failed
    assert len(bus.published) == 1


def test_a_file_deleted_meanwhile_has_nobody_to_tell(records: FileRecords) -> None:
    ref = _final_file(records)
    records.delete(ref.owner_id, ref.file_id)
    assert notify(records, Outbox(), Bus(), ref) == []
    assert missed(records, True, ref, {"Error": "RuntimeError", "Cause": "x"}) == []


def test_only_a_final_outcome_is_notified(records: FileRecords) -> None:
    ref = _final_file(records, status="PROCESSING")
    with pytest.raises(ValueError, match="only final outcomes"):
        notify(records, Outbox(), Bus(), ref)


def test_the_report_after_the_retries_names_the_channels_still_owed_and_why(records: FileRecords) -> None:
    ref = _final_file(records)
    with pytest.raises(ServiceThrottled):
        notify(records, Outbox(THROTTLED), Bus(), ref)  # the event went; the email did not
    cause = json.dumps({"errorType": "ServiceThrottled", "errorMessage": "SES throttled sending"})

    [owed] = missed(records, True, ref, {"Error": "ServiceThrottled", "Cause": cause})

    assert (owed.channel, owed.result, owed.failed) == (Channel.EMAIL, Result.MISSED, True)
    assert owed.reason == "ServiceThrottled: SES throttled sending"
    assert missed(records, False, ref, {"Error": "ServiceThrottled", "Cause": cause}) == []


# ------------------------------------------------------------------ adapters
@pytest.mark.parametrize(
    ("code", "status", "raised"),
    [
        ("Throttling", 400, ServiceThrottled),
        ("MessageRejected", 400, EmailRefused),
        ("MailFromDomainNotVerifiedException", 400, EmailRefused),
        ("AccountSendingPausedException", 400, EmailRefused),
        ("AccessDenied", 403, EmailRefused),
        ("ServiceUnavailable", 503, ClientError),  # left to the Catch: not retried, not a refusal
    ],
)
def test_ses_answers_become_a_retry_a_refusal_or_an_error(
    aws_env: None, code: str, status: int, raised: type[Exception]
) -> None:
    # One attempt: the SDK's own retries would ask the stub for more answers.
    ses = boto3.client("ses", region_name=REGION, config=Config(retries={"total_max_attempts": 1}))
    with Stubber(ses) as stub:
        stub.add_client_error("send_email", service_error_code=code, http_status_code=status)
        with pytest.raises(raised) as caught:
            SesMailer(ses, SENDER).send(OWNER_EMAIL, "subject", "body")
    assert type(caught.value) is raised
    if isinstance(caught.value, EmailRefused):
        assert caught.value.code == code


def test_an_unverified_sender_is_a_refusal(stack: StackFixture) -> None:
    with pytest.raises(EmailRefused) as refused:
        SesMailer(stack.client("ses"), SENDER).send(OWNER_EMAIL, "subject", "body")
    assert refused.value.code == "MessageRejected"


@pytest.mark.parametrize(
    ("entry_error", "raised"), [("ThrottlingException", ServiceThrottled), ("InternalFailure", RuntimeError)]
)
def test_an_event_the_bus_did_not_take_is_a_retry_or_an_error(
    aws_env: None, entry_error: str, raised: type[Exception]
) -> None:
    events = boto3.client("events", region_name=REGION)
    with Stubber(events) as stub:
        stub.add_response(
            "put_events",
            {"FailedEntryCount": 1, "Entries": [{"ErrorCode": entry_error, "ErrorMessage": "no"}]},
        )
        with pytest.raises(raised):
            BusPublisher(events, "bus").publish("FileProcessed", {"fileId": "x"})


# ------------------------------------------------------------------ handler
def test_email_is_off_without_a_sender_and_a_malformed_sender_fails_at_cold_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FILES_TABLE", "files")
    monkeypatch.setenv("EVENT_BUS_NAME", "bus")
    monkeypatch.setenv("SENDER_EMAIL", "")
    load_settings.cache_clear()
    assert load_settings(NotifySettings).sender_email == ""
    monkeypatch.setenv("SENDER_EMAIL", "not an address")
    load_settings.cache_clear()
    with pytest.raises(SettingsError, match="SENDER_EMAIL"):
        load_settings(NotifySettings)
    load_settings.cache_clear()


def test_the_handler_counts_each_channel_not_delivered(stack: StackFixture) -> None:
    stack.use_functions("NotifyFunction", SENDER_EMAIL=SENDER)  # configured, never verified
    records = FileRecords(stack.client("dynamodb"), stack.physical("FilesTable"))
    ref = _final_file(records)
    printed = io.StringIO()

    spec = stack.function("NotifyFunction")
    with redirect_stdout(printed):
        answer = invoke_in_process(spec, step_event(ref))
        reported = invoke_in_process(
            spec, {**step_event(ref), "missed": {"Error": "States.Timeout", "Cause": "timed out"}}
        )

    assert json.loads(answer.payload) == {"event": "sent", "email": "refused"}
    assert json.loads(reported.payload) == {}  # the event went and the email was refused: nothing owed
    metrics = [json.loads(line) for line in printed.getvalue().splitlines() if "NotificationsFailed" in line]
    assert [(m["channel"], m["step"], m["NotificationsFailed"]) for m in metrics] == [
        ("email", "notify", [1.0])
    ]


def test_the_missed_notifications_alarm_watches_the_metrics_the_step_emits(
    template: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from notify.handler import count_failure

    environment = template.resources["NotifyFunction"]["Properties"]["Environment"]["Variables"]
    service = environment["POWERTOOLS_SERVICE_NAME"]
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", service)
    emitted = set()
    for channel in Channel:
        out = io.StringIO()
        with redirect_stdout(out):
            count_failure(Delivery(channel, Result.REFUSED, "refused (test)"))
        [record] = [json.loads(line) for line in out.getvalue().splitlines() if '"_aws"' in line]
        [directive] = record["_aws"]["CloudWatchMetrics"]
        [names] = directive["Dimensions"]
        emitted.add((directive["Namespace"], frozenset((name, record[name]) for name in names)))
    alarm = template.resources["NotificationsFailedAlarm"]["Properties"]
    watched = {
        (metric["Namespace"], frozenset((d["Name"], d["Value"]) for d in metric["Dimensions"]))
        for metric in (q["MetricStat"]["Metric"] for q in alarm["Metrics"] if "MetricStat" in q)
    }
    assert watched == emitted
