"""The start function: upload events become executions named after the file id."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from filepipe.lambdas import invoke_in_process
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
