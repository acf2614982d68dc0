"""Callback tasks against `filepipe local` over HTTP: SendTaskFailure's cause reaches the run, and the token
of a task that is over (completed, failed or timed out) answers TaskTimedOut, as on AWS."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.local.conftest import LocalProcess
from tests.local.stepfunctions.scene import clients, workflow_role

pytestmark = pytest.mark.local

NAME = "callbacks-test"


class Scene:
    """A state machine whose callback tasks send their tokens to a queue the test reads."""

    def __init__(self, local_stack: LocalProcess) -> None:
        client = clients(local_stack)
        self.sqs, self.sfn, iam = client("sqs"), client("stepfunctions"), client("iam")
        self.queue = self.sqs.create_queue(QueueName=f"{NAME}-tokens")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sends = {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": queue_arn}
        self.role_arn = workflow_role(iam, NAME, [sends])
        self.tokens: dict[str, str] = {}

    def callback(self, name: str, next_state: str | None, timeout: int = 60) -> dict[str, Any]:
        state: dict[str, Any] = {
            "Type": "Task",
            "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {
                "QueueUrl": self.queue,
                "MessageBody": {"state": name, "taskToken.$": "$$.Task.Token"},
            },
            "TimeoutSeconds": timeout,
            "ResultPath": f"$.{name}",
        }
        state.update({"Next": next_state} if next_state else {"End": True})
        return state

    def start(self, definition: dict[str, Any]) -> str:
        machine = self.sfn.create_state_machine(
            name=f"{NAME}-{time.monotonic_ns()}", definition=json.dumps(definition), roleArn=self.role_arn
        )["stateMachineArn"]
        return str(self.sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"])

    def token(self, state: str, seconds: float = 20) -> str:
        """The token the task ``state`` sent (every task's name is unique across this module's runs)."""
        deadline = time.monotonic() + seconds
        while state not in self.tokens:
            assert time.monotonic() < deadline, f"no token from {state}"
            for message in self.sqs.receive_message(QueueUrl=self.queue, WaitTimeSeconds=1).get(
                "Messages", []
            ):
                body = json.loads(message["Body"])
                self.tokens[body["state"]] = body["taskToken"]
                self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"])
        return self.tokens[state]

    def ended(self, arn: str, seconds: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while True:
            execution: dict[str, Any] = self.sfn.describe_execution(executionArn=arn)
            if execution["status"] != "RUNNING":
                return execution
            assert time.monotonic() < deadline, f"{arn} is still running"
            time.sleep(0.05)

    def refused(self, token: str) -> list[str]:
        """What each callback with ``token`` answers: the error code, or "accepted"."""
        sends: list[Callable[[], Any]] = [
            lambda: self.sfn.send_task_success(taskToken=token, output="{}"),
            lambda: self.sfn.send_task_failure(taskToken=token, error="Late", cause="too late"),
            lambda: self.sfn.send_task_heartbeat(taskToken=token),
        ]
        answers = []
        for send in sends:
            try:
                send()
            except ClientError as error:
                answers.append(str(error.response["Error"]["Code"]))
            else:
                answers.append("accepted")
        return answers


@pytest.fixture(scope="module")
def scene(local_stack: LocalProcess) -> Scene:
    return Scene(local_stack)


def test_a_failure_s_cause_reaches_the_run_and_a_closed_task_refuses_its_token(scene: Scene) -> None:
    second = scene.callback("Second", None)
    second["Catch"] = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "Caught"}]
    arn = scene.start(
        {
            "StartAt": "First",
            "States": {
                "First": scene.callback("First", "Second"),
                "Second": second,
                "Caught": {"Type": "Succeed"},
            },
        }
    )
    scene.sfn.send_task_success(taskToken=scene.token("First"), output=json.dumps({"verdict": "CLEAN"}))
    second_token = scene.token("Second")

    assert scene.refused(scene.token("First")) == ["TaskTimedOut"] * 3
    scene.sfn.send_task_failure(
        taskToken=second_token, error="ScannerUnavailable", cause='{"errorType": "ScannerUnavailable"}'
    )
    execution = scene.ended(arn)

    assert execution["status"] == "SUCCEEDED"
    output = json.loads(execution["output"])
    assert output["First"] == {"verdict": "CLEAN"}
    assert output["failure"] == {
        "Error": "ScannerUnavailable",
        "Cause": '{"errorType": "ScannerUnavailable"}',
    }
    assert scene.refused(second_token) == ["TaskTimedOut"] * 3


def test_a_result_for_a_task_that_timed_out_is_refused(scene: Scene) -> None:
    arn = scene.start({"StartAt": "Slow", "States": {"Slow": scene.callback("Slow", None, timeout=1)}})
    token = scene.token("Slow")
    execution = scene.ended(arn)

    assert (execution["status"], execution["error"]) == ("FAILED", "States.Timeout")
    assert scene.refused(token) == ["TaskTimedOut"] * 3
