"""Step Functions' patches to moto's interpreter: a lambda:invoke task of a stack function skips the SDK."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from filepipe.local.services.awslambda.invoke import InvokeResult
from filepipe.local.services.awslambda.runner import Throttled
from filepipe.local.services.stepfunctions import patches as stepfunctions_patches


class FakeRunner:
    """The runner as the interpreter sees it: one known function, answers and throttling on demand."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []
        self.result = InvokeResult(b'{"ok": true}', None)
        self.throttle = False

    def knows(self, name_or_arn: str) -> bool:
        return name_or_arn.endswith("stack-Record")

    def invoke(self, name_or_arn: str, payload: bytes, client_context: str | None = None) -> InvokeResult:
        self.calls.append((name_or_arn, payload))
        if self.throttle:
            raise Throttled("Rate Exceeded: stack-Record has no free instance")
        return self.result


@pytest.fixture
def direct() -> tuple[Any, FakeRunner, list[dict[str, Any]]]:
    through_sdk: list[dict[str, Any]] = []
    runner = FakeRunner()

    def sdk(parameters: dict[str, Any], region: str, state_credentials: Any) -> Any:
        through_sdk.append(parameters)
        return {"StatusCode": 200, "Payload": "via the SDK"}

    return stepfunctions_patches._invoke_task_directly(runner, sdk), runner, through_sdk


def test_a_task_of_a_stack_function_gets_what_the_sdk_call_returns(
    direct: tuple[Any, FakeRunner, list[dict[str, Any]]],
) -> None:
    invoke, runner, through_sdk = direct
    response = invoke({"FunctionName": "stack-Record", "Payload": b'{"n": 1}'}, "us-east-1", None)
    assert response == {"StatusCode": 200, "ExecutedVersion": "$LATEST", "Payload": {"ok": True}}
    assert runner.calls == [("stack-Record", b'{"n": 1}')]
    runner.result = InvokeResult(json.dumps({"errorType": "FileRejected"}).encode(), "Unhandled")
    failed = invoke({"FunctionName": "stack-Record", "Payload": b"{}"}, "us-east-1", None)
    assert failed["FunctionError"] == "Unhandled"
    assert failed["Payload"] == {"errorType": "FileRejected"}
    assert through_sdk == []


def test_throttling_is_the_sdk_error_the_workflow_retries(
    direct: tuple[Any, FakeRunner, list[dict[str, Any]]],
) -> None:
    invoke, runner, _ = direct
    runner.throttle = True
    with pytest.raises(ClientError) as raised:
        invoke({"FunctionName": "stack-Record", "Payload": b"{}"}, "us-east-1", None)
    assert raised.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429


def test_other_functions_and_options_take_the_sdk(
    direct: tuple[Any, FakeRunner, list[dict[str, Any]]],
) -> None:
    invoke, runner, through_sdk = direct
    assert (
        invoke({"FunctionName": "elsewhere", "Payload": b"{}"}, "us-east-1", None)["Payload"] == "via the SDK"
    )
    with_context = {"FunctionName": "stack-Record", "Payload": b"{}", "ClientContext": "e30="}
    assert invoke(with_context, "us-east-1", None)["Payload"] == "via the SDK"
    assert len(through_sdk) == 2
    assert runner.calls == []
