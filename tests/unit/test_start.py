"""The start function: upload events become executions named after the file id."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from filepipe.local.services.awslambda.invoke import invoke_in_process
from filepipe.template import Template
from start.logic import start_request
from tests.stack import StackFixture

EVENTS = Path(__file__).resolve().parents[2] / "events"


def _event() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / "s3_object_created.json").read_text())
    return loaded


def test_the_execution_is_named_after_the_file_and_carries_only_a_reference() -> None:
    request = start_request(_event())
    assert request.execution_name == "01JD7W3Q9X4M2K8N6P0R5T1V3Z"
    assert request.input == {"file": json.loads((EVENTS / "state_input.json").read_text())["file"]}


@pytest.mark.parametrize(
    "change",
    [
        lambda e: e.update({"detail-type": "Object Deleted"}),
        lambda e: e["detail"]["object"].update(key="elsewhere/file.txt"),
        lambda e: e["detail"]["object"].update(key="uploads/../../etc/01JD7W3Q9X4M2K8N6P0R5T1V3Z"),
    ],
    ids=["not a creation", "outside uploads", "path tricks"],
)
def test_events_that_are_not_uploads_are_refused(change: Any) -> None:
    event = _event()
    change(event)
    with pytest.raises(ValueError, match="not"):
        start_request(event)


def _sqs_event(*bodies: str) -> dict[str, Any]:
    return {"Records": [{"messageId": f"m{i}", "body": body} for i, body in enumerate(bodies)]}


def test_a_malformed_message_is_reported_and_the_rest_start(stack: StackFixture) -> None:
    stack.use_functions("StartFunction")
    event = _event()
    event["detail"]["bucket"]["name"] = stack.physical("IngestBucket")
    result = invoke_in_process(stack.function("StartFunction"), _sqs_event("not json", json.dumps(event)))

    assert result.function_error is None
    assert json.loads(result.payload) == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    machine = stack.physical("ProcessUploadStateMachine")
    runs = stack.client("stepfunctions").list_executions(stateMachineArn=machine)["executions"]
    assert [run["name"] for run in runs] == ["01JD7W3Q9X4M2K8N6P0R5T1V3Z"]


def _without(*path: str) -> Any:
    def change(event: dict[str, Any]) -> None:
        *parents, last = path
        target = event
        for name in parents:
            target = target[name]
        del target[last]

    return change


MALFORMED_EVENTS: dict[str, Any] = {
    "detail null": lambda e: e.update(detail=None),
    "detail a list": lambda e: e.update(detail=[e["detail"]]),
    "detail a string": lambda e: e.update(detail="uploads/x"),
    "no bucket": _without("detail", "bucket"),
    "no object": _without("detail", "object"),
    "no key": _without("detail", "object", "key"),
    "key not a string": lambda e: e["detail"]["object"].update(key=["uploads/a/b"]),
    "no detail-type": _without("detail-type"),
    "another source": lambda e: e.update(source="aws.s3.fake"),
}


@pytest.mark.parametrize("change", MALFORMED_EVENTS.values(), ids=MALFORMED_EVENTS.keys())
def test_a_malformed_event_is_a_value_error_that_names_what_is_wrong(change: Any) -> None:
    event = _event()
    change(event)
    with pytest.raises(ValueError, match=r"not an S3 Object Created event of an upload: .+"):
        start_request(event)


def _unusable_bodies() -> list[str]:
    bodies = ["{not json", "[1, 2]", '"a string"', "null", json.dumps({"detail-type": "Object Created"})]
    for change in MALFORMED_EVENTS.values():
        event = _event()
        change(event)
        bodies.append(json.dumps(event))
    outside = _event()
    outside["detail"]["object"]["key"] = "elsewhere/01JD7W3Q9X4M2K8N6P0R5T1V3Z"
    return [*bodies, json.dumps(outside)]


def test_each_malformed_message_fails_alone_with_one_clear_log_line(
    stack: StackFixture, caplog: pytest.LogCaptureFixture
) -> None:
    stack.use_functions("StartFunction")
    valid = _event()
    valid["detail"]["bucket"]["name"] = stack.physical("IngestBucket")
    bad = _unusable_bodies()
    bodies = [bad[0], json.dumps(valid), *bad[1:]]

    result = invoke_in_process(stack.function("StartFunction"), _sqs_event(*bodies))

    assert result.function_error is None
    reported = [failure["itemIdentifier"] for failure in json.loads(result.payload)["batchItemFailures"]]
    assert reported == [f"m{i}" for i in range(len(bodies)) if i != 1]
    machine = stack.physical("ProcessUploadStateMachine")
    runs = stack.client("stepfunctions").list_executions(stateMachineArn=machine)["executions"]
    assert [run["name"] for run in runs] == ["01JD7W3Q9X4M2K8N6P0R5T1V3Z"]
    logged = [record for record in caplog.records if record.getMessage() == "unusable upload event"]
    assert [getattr(record, "messageId", None) for record in logged] == reported
    assert all(getattr(record, "reason", "") and record.exc_info is None for record in logged)
    assert not [record for record in caplog.records if record.exc_info]  # no traceback for any of them


def test_a_batch_of_only_malformed_messages_is_still_answered_message_by_message(stack: StackFixture) -> None:
    stack.use_functions("StartFunction")
    bodies = _unusable_bodies()[:3]

    result = invoke_in_process(stack.function("StartFunction"), _sqs_event(*bodies))

    assert result.function_error is None  # not a function error: that would count against the alarm
    assert json.loads(result.payload) == {
        "batchItemFailures": [{"itemIdentifier": f"m{i}"} for i in range(3)]
    }


def test_a_duplicate_event_is_ignored_and_a_failed_start_fails_only_its_message(stack: StackFixture) -> None:
    stack.use_functions("StartFunction")
    valid = _event()
    valid["detail"]["bucket"]["name"] = stack.physical("IngestBucket")
    function = stack.function("StartFunction")
    assert json.loads(invoke_in_process(function, _sqs_event(json.dumps(valid))).payload) == {
        "batchItemFailures": []
    }

    stack.use_functions(
        "StartFunction", STATE_MACHINE_ARN=stack.physical("ProcessUploadStateMachine") + "-gone"
    )
    other = _event()
    other["detail"]["object"]["key"] = (
        "uploads/0f6c5e2a-7b1d-4c55-9d0e-2d7a1c9b8e41/01JD7W3Q9X4M2K8N6P0R5T1V40"
    )
    result = invoke_in_process(function, _sqs_event(json.dumps(other)))
    assert json.loads(result.payload) == {"batchItemFailures": [{"itemIdentifier": "m0"}]}

    stack.use_functions("StartFunction")
    again = invoke_in_process(function, _sqs_event(json.dumps(valid), json.dumps(valid)))
    assert json.loads(again.payload) == {"batchItemFailures": []}


def test_the_start_queue_feeds_a_bounded_number_of_batches_at_once(template: Template) -> None:
    mappings = [
        resource["Properties"]
        for resource in template.of_type("AWS::Lambda::EventSourceMapping").values()
        if resource["Properties"]["FunctionName"] == {"Ref": "StartFunction"}
    ]
    assert len(mappings) == 1
    assert 2 <= mappings[0]["ScalingConfig"]["MaximumConcurrency"] <= 1000  # what SQS mappings accept
