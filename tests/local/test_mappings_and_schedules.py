"""SQS event source mappings (batch shape, partial failures) and schedules, against moto's SQS."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from filepipe.local.services.awslambda.invoke import InvokeResult
from filepipe.local.services.awslambda.mappings import QueuePoller, sqs_event, succeeded_messages
from filepipe.local.services.events.delivery import RuleTarget
from filepipe.local.services.scheduler.clock import Scheduler
from filepipe.local.stack.model import EventSourceMappingSpec, ScheduleSpec

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:start"


def messages(*ids: str) -> list[dict[str, Any]]:
    return [
        {
            "MessageId": message_id,
            "ReceiptHandle": f"rh-{message_id}",
            "Body": json.dumps({"n": message_id}),
            "MD5OfBody": "md5",
            "Attributes": {
                "ApproximateReceiveCount": "1",
                "SentTimestamp": "1700000000000",
                "SenderId": "AID",
            },
            "MessageAttributes": {"kind": {"StringValue": "upload", "DataType": "String"}},
        }
        for message_id in ids
    ]


def ok(payload: Any) -> InvokeResult:
    return InvokeResult(json.dumps(payload).encode(), None)


def test_the_event_has_lambdas_sqs_record_shape() -> None:
    [record] = sqs_event(messages("m1"), QUEUE_ARN, "us-east-1")["Records"]
    assert record == {
        "messageId": "m1",
        "receiptHandle": "rh-m1",
        "body": '{"n": "m1"}',
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000", "SenderId": "AID"},
        "messageAttributes": {
            "kind": {
                "stringValue": "upload",
                "binaryValue": None,
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": "String",
            }
        },
        "md5OfBody": "md5",
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN,
        "awsRegion": "us-east-1",
    }


def test_batch_item_failures_keep_only_the_failed_messages() -> None:
    batch = messages("m1", "m2", "m3")
    report = ok({"batchItemFailures": [{"itemIdentifier": "m2"}]})
    assert [m["MessageId"] for m in succeeded_messages(batch, report, True)] == ["m1", "m3"]
    assert succeeded_messages(batch, ok({"batchItemFailures": []}), True) == batch
    assert succeeded_messages(batch, ok(None), True) == batch
    # Without ReportBatchItemFailures the response means nothing: the whole batch succeeded.
    assert succeeded_messages(batch, report, False) == batch


def test_an_unusable_failure_report_or_an_error_fails_the_whole_batch() -> None:
    batch = messages("m1", "m2")
    assert succeeded_messages(batch, ok({"batchItemFailures": [{"itemIdentifier": "unknown"}]}), True) == []
    assert succeeded_messages(batch, ok({"batchItemFailures": [{"itemIdentifier": ""}]}), True) == []
    assert succeeded_messages(batch, ok("not an object"), True) == []
    assert succeeded_messages(batch, InvokeResult(b"{}", "Unhandled"), True) == []


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


def test_the_poller_invokes_with_batches_and_deletes_what_succeeded(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="start", Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
    for n in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": n}))
    seen: list[dict[str, Any]] = []

    def invoke(function: str, payload: bytes) -> InvokeResult:
        event = json.loads(payload)
        seen.append(event)
        failed = [r["messageId"] for r in event["Records"] if json.loads(r["body"])["n"] == 1]
        return ok({"batchItemFailures": [{"itemIdentifier": m} for m in failed]})

    spec = EventSourceMappingSpec("Map", "uuid", QUEUE_ARN, "stack-Start", 10, 0, True, True, None)
    poller = QueuePoller(spec, sqs, invoke, "us-east-1", pollers=1)
    poller.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and sum(len(e["Records"]) for e in seen) < 3:
            time.sleep(0.05)
    finally:
        poller.stop()
    assert sum(len(e["Records"]) for e in seen) >= 3
    assert all(r["eventSourceARN"] == QUEUE_ARN for e in seen for r in e["Records"])
    time.sleep(1.2)  # the failed message becomes visible again once its visibility timeout ends
    left = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    assert [json.loads(m["Body"]) for m in left] == [{"n": 1}]


def test_a_rate_schedule_fires_every_interval_into_the_delivery() -> None:
    now = [1000.0]
    fired: list[tuple[RuleTarget, dict[str, Any]]] = []
    target = {"Id": "t", "Arn": "arn:aws:lambda:us-east-1:123456789012:function:f", "Input": "{}"}
    schedule = ScheduleSpec(
        "Every", "every", "arn:aws:scheduler:::schedule/every", "rate(5 minutes)", target, True, False
    )
    rule = ScheduleSpec("Rule", "rule", "arn:aws:events:::rule/rule", "rate(10 minutes)", target, True, True)
    paused = ScheduleSpec("Paused", "paused", "arn", "rate(1 minute)", target, False, False)
    scheduler = Scheduler(
        [schedule, rule, paused],
        lambda t, e: fired.append((t, e)),
        "123456789012",
        "us-east-1",
        clock=lambda: now[0],
    )
    scheduler.run_due()
    assert fired == []
    now[0] += 300
    scheduler.run_due()
    assert [(t.rule_name, e) for t, e in fired] == [("every", {})]
    now[0] += 300
    scheduler.run_due()
    assert [t.rule_name for t, _ in fired] == ["every", "every", "rule"]
    scheduled_event = fired[-1][1]
    assert scheduled_event["detail-type"] == "Scheduled Event"
    assert scheduled_event["resources"] == ["arn:aws:events:::rule/rule"]


def test_a_cron_schedule_fires_at_its_times_in_its_zone_until_its_end_date() -> None:
    now = [datetime(2026, 11, 23, 7, 0, tzinfo=UTC).timestamp()]
    fired: list[float] = []
    target = {"Id": "t", "Arn": "arn:aws:lambda:us-east-1:123456789012:function:f", "Input": "{}"}
    daily = ScheduleSpec(
        "Daily",
        "daily",
        "arn:aws:scheduler:::schedule/daily",
        "cron(30 9 ? * MON-FRI *)",
        target,
        enabled=True,
        scheduled_rule=False,
        timezone="Europe/Berlin",
        end_date="2026-11-25T00:00:00Z",
    )
    scheduler = Scheduler(
        [daily], lambda t, e: fired.append(now[0]), "123456789012", "us-east-1", clock=lambda: now[0]
    )
    assert [due for due, _ in scheduler.pending] == [datetime(2026, 11, 23, 8, 30, tzinfo=UTC)]  # 09:30 CET
    for _ in range(48):  # an hour at a time: each run fires at the first tick after it is due
        now[0] += 3600
        scheduler.run_due()
    # Monday's and Tuesday's 08:30 UTC runs, at the 09:00 tick; the end date stops it before Wednesday.
    assert [datetime.fromtimestamp(t, UTC).strftime("%a %H:%M") for t in fired] == ["Mon 09:00", "Tue 09:00"]
    assert scheduler.pending == []
