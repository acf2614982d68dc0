"""Reading dead-letter messages: a status-change detail, a whole status-change event, an upload event."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from filepipe.ops.replay import NotReplayable, parse_failed_execution, parse_start_failure

EVENTS = Path(__file__).resolve().parents[2] / "events"
ARN = "arn:aws:states:us-east-1:123456789012:execution:filepipe-ProcessUpload:01JD7W3Q9X4M2K8N6P0R5T1V3Z"


def _state_input() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / "state_input.json").read_text())
    return {"file": loaded["file"]}


def _detail() -> dict[str, Any]:
    return {
        "executionArn": ARN,
        "name": "01JD7W3Q9X4M2K8N6P0R5T1V3Z",
        "status": "FAILED",
        "input": json.dumps(_state_input()),
        "error": "ScannerUnavailable",
        "cause": "no clamd",
    }


def test_the_status_change_detail_gives_the_file_the_input_and_the_failed_run() -> None:
    request = parse_failed_execution(json.dumps(_detail()))
    assert request.ref.file_id == _state_input()["file"]["fileId"]
    assert json.loads(request.input) == _state_input()
    assert request.failed_execution_arn == ARN


def test_a_whole_status_change_event_reads_the_same() -> None:
    event = {
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "detail": _detail(),
    }
    assert parse_failed_execution(json.dumps(event)) == parse_failed_execution(json.dumps(_detail()))


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{oops", "body is not JSON"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps({**_detail(), "input": None}), "no execution input"),
        (json.dumps({**_detail(), "input": "not json"}), "no file reference"),
        (json.dumps({**_detail(), "input": json.dumps({"file": {"bucket": "b"}})}), "no file reference"),
    ],
)
def test_unusable_failed_execution_messages_say_why(body: str, reason: str) -> None:
    with pytest.raises(NotReplayable, match=reason):
        parse_failed_execution(body)


def test_an_upload_event_from_the_start_dlq_becomes_the_first_run_s_input() -> None:
    body = (EVENTS / "s3_object_created.json").read_text()
    request = parse_start_failure(body)
    assert json.loads(request.input) == _state_input()
    assert request.failed_execution_arn is None


def test_anything_else_on_the_start_dlq_is_not_replayable() -> None:
    with pytest.raises(NotReplayable, match="not an upload event"):
        parse_start_failure(json.dumps({"detail-type": "Something else"}))
