"""EventBridge delivery: target input as AWS builds it, retries with backoff, then the target's DLQ."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from filepipe.local.services.events.delivery import (
    EventDelivery,
    RuleTarget,
    TargetError,
    execution_status_event,
    json_path,
    normalize_event,
    target_input,
    transform_input,
)
from filepipe.template import load_template

RULE_ARN = "arn:aws:events:us-east-1:123456789012:rule/failed"
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:target"
DLQ_ARN = "arn:aws:sqs:us-east-1:123456789012:dead-letters"


def failed_execution_event() -> dict[str, Any]:
    return execution_status_event(
        execution_arn="arn:aws:states:us-east-1:123456789012:execution:sm:01FILE",
        state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:sm",
        name="01FILE",
        status="FAILED",
        start_date=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        stop_date=datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC),
        input_text='{"file":{"key":"uploads/a/01FILE"}}',
        output_text=None,
        error="States.TaskFailed",
        cause=None,
        account="123456789012",
        region="us-east-1",
    )


def test_the_templates_failed_execution_target_gets_the_detail() -> None:
    rule = load_template().resources["FailedExecutionsRule"]["Properties"]
    event = failed_execution_event()
    message = json.loads(target_input(rule["Targets"][0], event, RULE_ARN, "failed"))
    assert message["name"] == "01FILE"
    assert message["status"] == "FAILED"
    assert message["input"] == '{"file":{"key":"uploads/a/01FILE"}}'
    assert message["error"] == "States.TaskFailed"


def test_a_transformer_puts_strings_as_json_strings_and_missing_paths_as_null() -> None:
    paths = {
        "executionArn": "$.detail.executionArn",
        "name": "$.detail.name",
        "input": "$.detail.input",
        "cause": "$.detail.cause",
        "nowhere": "$.detail.nowhere",
    }
    template = (
        '{"executionArn": <executionArn>, "executionName": <name>, "input": <input>, '
        '"cause": <cause>, "missing": <nowhere>}'
    )
    message = json.loads(transform_input(failed_execution_event(), paths, template))
    assert message == {
        "executionArn": "arn:aws:states:us-east-1:123456789012:execution:sm:01FILE",
        "executionName": "01FILE",
        # The execution input is a JSON string in the event, so it arrives as a string, as on AWS.
        "input": '{"file":{"key":"uploads/a/01FILE"}}',
        "cause": None,
        "missing": None,
    }


def test_values_inside_quotes_are_spliced_as_text_and_missing_paths_are_null_or_empty() -> None:
    event = {"detail": {"name": 'say "hi"', "count": 3, "list": ["a", "b"], "obj": {"k": 1}}}
    paths = {
        "name": "$.detail.name",
        "count": "$.detail.count",
        "list": "$.detail.list",
        "gone": "$.detail.gone",
    }
    text = transform_input(
        event, paths, '{"text": "<name> x<count>", "n": <count>, "l": <list>, "g": <gone>, "q": "<gone>"}'
    )
    assert json.loads(text) == {"text": 'say "hi" x3', "n": 3, "l": ["a", "b"], "g": None, "q": ""}
    assert transform_input(event, {"obj": "$.detail.obj"}, '"<obj>"') == '"{\\"k\\":1}"'
    assert json.loads(transform_input(event, {}, "<aws.events.rule-name>", rule_name="r1")) == "r1"


def test_json_path_reads_fields_indexes_and_quoted_names() -> None:
    document = {"a": {"b-c": [{"d": 1}, {"d": 2}]}}
    assert json_path(document, "$.a['b-c'][1].d") == (True, 2)
    assert json_path(document, "$.a.b-c[0]") == (True, {"d": 1})
    assert json_path(document, "$.a.missing") == (False, None)
    assert json_path(document, "$") == (True, document)


def test_target_input_is_the_event_a_constant_or_a_selection() -> None:
    event = {"id": "1", "detail": {"x": 1}}
    assert json.loads(target_input({"Arn": QUEUE_ARN}, event, RULE_ARN, "r")) == event
    assert (
        target_input({"Arn": QUEUE_ARN, "Input": '{"fixed":true}'}, event, RULE_ARN, "r") == '{"fixed":true}'
    )
    assert json.loads(target_input({"Arn": QUEUE_ARN, "InputPath": "$.detail"}, event, RULE_ARN, "r")) == {
        "x": 1
    }


def test_events_get_a_unique_id_and_iso_time() -> None:
    moto_event = {"id": "17793124-05d4-b198-2fde-7ededc63b103", "time": 1767322800.5, "source": "aws.s3"}
    normalized = normalize_event(moto_event)
    assert normalized["id"] != moto_event["id"]
    assert normalized["time"] == "2026-01-02T03:00:00Z"


class Recorder:
    """Target and DLQ stand-ins that fail a given number of times."""

    def __init__(self, failures: int, error: TargetError) -> None:
        self.failures = failures
        self.error = error
        self.delivered: list[str] = []
        self.attempts = 0
        self.dead: list[tuple[str, str, dict[str, str]]] = []
        self.done = threading.Event()

    def send(self, target: Mapping[str, Any], payload: str) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise self.error
        self.delivered.append(payload)
        self.done.set()

    def dead_letter(self, arn: str, body: str, attributes: dict[str, str]) -> None:
        self.dead.append((arn, body, attributes))
        self.done.set()


def deliver(recorder: Recorder, retry_policy: dict[str, int]) -> None:
    delivery = EventDelivery(
        {"sqs": recorder.send}, recorder.dead_letter, retry_base_seconds=0.001, retry_cap_seconds=0.01
    )
    target = {"Id": "t", "Arn": QUEUE_ARN, "RetryPolicy": retry_policy, "DeadLetterConfig": {"Arn": DLQ_ARN}}
    delivery.submit(RuleTarget("rule", RULE_ARN, target), {"id": "e1", "detail": {}})
    try:
        assert recorder.done.wait(5)
        assert delivery.wait_idle(5)
    finally:
        delivery.stop()


def test_a_failing_target_is_retried_and_then_delivered() -> None:
    recorder = Recorder(failures=2, error=TargetError("ThrottlingException", "slow down", retryable=True))
    deliver(recorder, {"MaximumRetryAttempts": 5, "MaximumEventAgeInSeconds": 60})
    assert recorder.attempts == 3
    assert len(recorder.delivered) == 1
    assert recorder.dead == []


def test_after_the_last_retry_the_event_goes_to_the_dlq_with_the_reason() -> None:
    recorder = Recorder(failures=100, error=TargetError("ThrottlingException", "slow down", retryable=True))
    deliver(recorder, {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 60})
    assert recorder.attempts == 4  # the first attempt and three retries
    [(arn, body, attributes)] = recorder.dead
    assert arn == DLQ_ARN
    assert json.loads(body) == {"id": "e1", "detail": {}}
    assert attributes == {
        "RULE_ARN": RULE_ARN,
        "TARGET_ARN": QUEUE_ARN,
        "ERROR_CODE": "ThrottlingException",
        "ERROR_MESSAGE": "slow down",
        "RETRY_ATTEMPTS": "3",
        "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttempts",
    }


def test_a_missing_target_is_not_retried() -> None:
    recorder = Recorder(
        failures=100, error=TargetError("QueueDoesNotExist", "no such queue", retryable=False)
    )
    deliver(recorder, {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400})
    assert recorder.attempts == 1
    [(_, _, attributes)] = recorder.dead
    assert attributes["ERROR_CODE"] == "QueueDoesNotExist"
    assert "EXHAUSTED_RETRY_CONDITION" not in attributes


def test_an_event_too_old_to_retry_goes_to_the_dlq() -> None:
    recorder = Recorder(failures=100, error=TargetError("InternalException", "boom", retryable=True))
    deliver(recorder, {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 0})
    [(_, _, attributes)] = recorder.dead
    assert attributes["EXHAUSTED_RETRY_CONDITION"] == "MaximumEventAgeInSeconds"
