"""Step Functions' 256 KiB payload limit, in moto's interpreter as the local runtime runs it.

A task result over the limit is a task failure (States.DataLimitExceeded) that the state's Catch of
States.ALL takes, as Step Functions did when its behaviour was recorded; a state output over the limit
fails the execution at once, with no Catch, whatever the states after it would have done.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from filepipe.local import moto_patches
from filepipe.local.services.awslambda.invoke import InvokeResult
from filepipe.local.services.stepfunctions.patches import keep_states_error_names
from filepipe.local.stack.model import FunctionSpec
from tests import images
from tests.workflow.harness import Pipeline

LIMIT = 256 * 1024


@pytest.fixture(autouse=True)
def branch_errors() -> Iterator[None]:
    """moto's interpreter as the local runtime patches it: a branch's States. error reaches the Catch."""
    uninstall = moto_patches.install(keep_states_error_names)
    yield
    uninstall()


def returning(result: dict[str, Any]) -> Any:
    def replacement(spec: FunctionSpec, event: dict[str, Any]) -> InvokeResult:
        return InvokeResult(json.dumps(result).encode(), None)

    return replacement


def history(pipeline: Pipeline, execution: dict[str, Any]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = pipeline.sfn.get_execution_history(
        executionArn=execution["executionArn"], maxResults=1000
    )["events"]
    return events


def test_a_task_returning_300_kb_fails_its_task_and_the_run_is_recorded_failed(pipeline: Pipeline) -> None:
    # The mutation: the metadata step returns a document's whole text instead of a few facts.
    pipeline.router.replace("MetadataFunction", returning({"text": "x" * 300 * 1024}))
    ref, execution = pipeline.process(images.jpeg((640, 480)))

    assert execution["status"] == "FAILED"
    assert execution["error"] == "States.DataLimitExceeded"
    failed = [e for e in history(pipeline, execution) if e["type"] == "TaskFailed"]
    assert [e["taskFailedEventDetails"]["error"] for e in failed] == ["States.DataLimitExceeded"]
    assert failed[0]["taskFailedEventDetails"]["cause"] == (
        "The state/task 'lambda' returned a result with a size exceeding the maximum number of bytes service "
        "limit."
    )
    record = pipeline.record(ref)
    assert record["status"] == "FAILED"
    assert record["error"]["code"] == "States.DataLimitExceeded"
    original = f"files/{ref.owner_id}/{ref.file_id}/original"
    assert original not in pipeline.keys(pipeline.clean)  # the failed run promoted nothing


def test_a_state_output_over_the_limit_fails_the_run_past_every_catch(pipeline: Pipeline) -> None:
    # Each branch returns less than the limit; the parallel state's output, both of them, is over it.
    pipeline.router.replace("ThumbnailsFunction", returning({"thumbnails": ["t" * (LIMIT // 2)]}))
    pipeline.router.replace("MetadataFunction", returning({"exif": "m" * (LIMIT // 2)}))
    ref, execution = pipeline.process(images.jpeg((640, 480)))

    assert execution["status"] == "FAILED"
    assert execution["error"] == "States.DataLimitExceeded"
    assert execution["cause"] == (
        "The state/task 'Make thumbnails and metadata' returned a result with a size exceeding the maximum "
        "number of bytes service limit."
    )
    entered = [
        e["stateEnteredEventDetails"]["name"]
        for e in history(pipeline, execution)
        if "stateEnteredEventDetails" in e
    ]
    assert "Record failure" not in entered  # no Catch ran: the record stays as the run left it
    assert pipeline.record(ref)["status"] == "PROCESSING"
    assert pipeline.router.calls["RecordFunction"] == 1  # only "Mark processing"
    pipeline.publish_status_change(execution)
    [dead_letter] = pipeline.dlq_messages()
    assert (dead_letter["name"], dead_letter["status"]) == (ref.file_id, "FAILED")
