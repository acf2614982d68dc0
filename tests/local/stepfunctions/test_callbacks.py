"""Callback tasks (``lambda:invoke.waitForTaskToken``) in moto's interpreter as the local runtime patches it.

The runtime's route of ``lambda:invoke`` to its runner takes the callback form too; the task waits for its
token, takes one outcome (SendTaskFailure's cause included), and answers TaskTimedOut once it is over; the
context object has ``Execution.RedriveCount``, 0 until the execution is redriven.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from filepipe.local import moto_patches
from filepipe.local.services.awslambda.invoke import InvokeResult
from filepipe.local.services.stepfunctions import patches as stepfunctions_patches

REGION = "us-east-1"
FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:stack-Verdict"


def _callback(name: str, next_state: str | None, timeout: int = 30) -> dict[str, Any]:
    state: dict[str, Any] = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {
            "FunctionName": FUNCTION,
            "Payload": {
                "state": name,
                "taskToken.$": "$$.Task.Token",
                "redriveCount.$": "$$.Execution.RedriveCount",
            },
        },
        "TimeoutSeconds": timeout,
        "ResultPath": f"$.{name}",
    }
    if next_state:
        state["Next"] = next_state
    else:
        state["End"] = True
    return state


class Runner:
    """The Lambda runner as the interpreter sees it: each invocation handed to the test's ``answer``."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        self.answer: Callable[[dict[str, Any]], None] = lambda payload: None

    def knows(self, name_or_arn: str) -> bool:
        return name_or_arn == FUNCTION

    def invoke(self, name_or_arn: str, payload: bytes, client_context: str | None = None) -> InvokeResult:
        event = json.loads(payload)
        self.payloads.append(event)
        self.answer(event)
        return InvokeResult(b'{"waiting": true}', None)


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> Iterator[Runner]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    found = Runner()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        uninstall = [
            moto_patches.install(
                # Every task of these machines is the runner's: nothing goes to this endpoint.
                stepfunctions_patches.share_interpreter_clients,
                "http://127.0.0.1:1",
                found,
            ),
            moto_patches.install(stepfunctions_patches.redrive_executions),
            moto_patches.install(stepfunctions_patches.callbacks_as_on_aws),
        ]
        try:
            yield found
        finally:
            for step in reversed(uninstall):
                step()


def _sfn() -> Any:
    return boto3.client("stepfunctions", region_name=REGION)


def _start(definition: dict[str, Any]) -> str:
    machine = _sfn().create_state_machine(
        name=f"callbacks-{time.monotonic_ns()}",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/machine",
    )["stateMachineArn"]
    return str(_sfn().start_execution(stateMachineArn=machine, input="{}")["executionArn"])


def _until(arn: str, done: Callable[[dict[str, Any]], bool], seconds: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        execution: dict[str, Any] = _sfn().describe_execution(executionArn=arn)
        if done(execution):
            return execution
        time.sleep(0.05)
    raise TimeoutError(f"{arn} did not get there in {seconds} s")


def _ended(arn: str) -> dict[str, Any]:
    return _until(arn, lambda execution: execution["status"] != "RUNNING")


def test_a_callback_task_reaches_the_runner_and_goes_on_with_the_token_it_sent_at_once(
    runner: Runner,
) -> None:
    runner.answer = lambda payload: _sfn().send_task_success(
        taskToken=payload["taskToken"], output=json.dumps({"verdict": "CLEAN"})
    )
    arn = _start({"StartAt": "Await", "States": {"Await": _callback("Await", None)}})

    execution = _ended(arn)

    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["output"]) == {"Await": {"verdict": "CLEAN"}}
    [payload] = runner.payloads
    assert payload["redriveCount"] == 0
    assert payload["taskToken"]


def test_a_task_takes_one_outcome_with_its_cause_and_refuses_its_token_after(runner: Runner) -> None:
    tokens: dict[str, str] = {}

    def answer(payload: dict[str, Any]) -> None:
        tokens[payload["state"]] = payload["taskToken"]
        if payload["state"] == "First":
            _sfn().send_task_success(taskToken=payload["taskToken"], output="{}")

    runner.answer = answer
    second = _callback("Second", None)
    second["Catch"] = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "Caught"}]
    arn = _start(
        {
            "StartAt": "First",
            "States": {
                "First": _callback("First", "Second"),
                "Second": second,
                "Caught": {"Type": "Succeed"},
            },
        }
    )
    _until(arn, lambda execution: "Second" in tokens)

    for send in (
        lambda: _sfn().send_task_success(taskToken=tokens["First"], output="{}"),
        lambda: _sfn().send_task_failure(taskToken=tokens["First"], error="Late"),
        lambda: _sfn().send_task_heartbeat(taskToken=tokens["First"]),
    ):
        with pytest.raises(ClientError) as refused:
            send()
        assert refused.value.response["Error"]["Code"] == "TaskTimedOut"
    _sfn().send_task_failure(
        taskToken=tokens["Second"], error="ScannerUnavailable", cause="GuardDuty: FAILED"
    )
    execution = _ended(arn)

    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["output"])["failure"] == {
        "Error": "ScannerUnavailable",
        "Cause": "GuardDuty: FAILED",
    }
    # The execution is over too: moto looked for the token among running executions only (InvalidToken).
    for send in (
        lambda: _sfn().send_task_success(taskToken=tokens["Second"], output="{}"),
        lambda: _sfn().send_task_failure(taskToken=tokens["Second"], error="Again"),
        lambda: _sfn().send_task_heartbeat(taskToken=tokens["Second"]),
    ):
        with pytest.raises(ClientError) as refused:
            send()
        assert refused.value.response["Error"]["Code"] == "TaskTimedOut"


def test_a_redriven_execution_tells_its_redrive_count_to_the_task(runner: Runner) -> None:
    arn = _start({"StartAt": "Await", "States": {"Await": _callback("Await", None, timeout=1)}})
    timed_out = _ended(arn)
    assert (timed_out["status"], timed_out["error"]) == ("FAILED", "States.Timeout")
    runner.answer = lambda payload: _sfn().send_task_success(taskToken=payload["taskToken"], output="{}")

    _sfn().redrive_execution(executionArn=arn)
    execution = _until(arn, lambda e: e["status"] != "RUNNING" and e.get("redriveCount") == 1)

    assert execution["status"] == "SUCCEEDED"
    assert [payload["redriveCount"] for payload in runner.payloads] == [0, 1]
    assert runner.payloads[0]["taskToken"] != runner.payloads[1]["taskToken"]
