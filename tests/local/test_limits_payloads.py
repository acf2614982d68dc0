"""Invoke's payload limits: requests of 6 MiB (over 1 MiB asynchronous) are refused, larger responses fail."""

from __future__ import annotations

import io
import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from filepipe.local.endpoint import AwsEndpoint, in_process_transport
from filepipe.local.services.awslambda.runner import (
    MAX_EVENT_PAYLOAD,
    MAX_RESPONSE_PAYLOAD,
    MAX_SYNC_PAYLOAD,
    LambdaRunner,
)
from filepipe.local.stack.model import FunctionSpec
from filepipe.runtime_state import ACCESS_KEY_ID, SECRET_ACCESS_KEY

ENDPOINT = "http://127.0.0.1:9"
HANDLERS = textwrap.dedent(
    """
    def size(event, context):
        return {"keys": len(event)}

    def answer(event, context):
        # A result of exactly event["bytes"] bytes once serialized: a JSON string and its two quotes.
        return "x" * (event["bytes"] - 2)
    """
)


def spec(code: Path, logical: str, handler: str) -> FunctionSpec:
    return FunctionSpec(
        logical_id=logical,
        name=f"limits-{logical}",
        arn=f"arn:aws:lambda:us-east-1:123456789012:function:limits-{logical}",
        handler=handler,
        code_path=code,
        runtime="python3.12",
        timeout=30,
        memory_mb=512,
        environment={},
    )


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LambdaRunner]:
    code = tmp_path_factory.mktemp("code")
    (code / "handlers.py").write_text(HANDLERS)
    running = LambdaRunner(
        {"Size": spec(code, "Size", "handlers.size"), "Answer": spec(code, "Answer", "handlers.answer")},
        region="us-east-1",
        endpoint_url=ENDPOINT,
        credentials=(ACCESS_KEY_ID, SECRET_ACCESS_KEY),
        log_sink=io.StringIO(),
        max_workers_per_function=1,
    )
    running.start()
    yield running
    running.stop()


def _moto_is_not_asked(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    raise AssertionError(f"moto got {environ['REQUEST_METHOD']} {environ['PATH_INFO']}")


@pytest.fixture(scope="module")
def lambda_client(runner: LambdaRunner) -> Any:
    """An SDK client of the local runtime's AWS endpoint, as a developer's script or a function has one."""
    endpoint = AwsEndpoint(_moto_is_not_asked, runner, lambda key: SECRET_ACCESS_KEY)
    client = boto3.client(
        "lambda",
        region_name="us-east-1",
        endpoint_url=ENDPOINT,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
    )
    client.meta.events.register("before-send", in_process_transport(endpoint))
    return client


def event_of(size: int) -> bytes:
    """A JSON object of exactly ``size`` bytes."""
    padding = size - len(b'{"padding":""}')
    return json.dumps({"padding": "p" * padding}, separators=(",", ":")).encode()


def test_a_request_of_6_mib_is_refused_with_413(lambda_client: Any) -> None:
    with pytest.raises(ClientError) as refused:
        lambda_client.invoke(FunctionName="limits-Size", Payload=event_of(MAX_SYNC_PAYLOAD))
    error = refused.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert error["Error"]["Code"] == "RequestEntityTooLargeException"
    assert error["Error"]["Message"] == (
        "Request must be smaller than 6291456 bytes for the InvokeFunction operation"
    )


def test_a_request_just_under_6_mib_runs(lambda_client: Any) -> None:
    answer = lambda_client.invoke(FunctionName="limits-Size", Payload=event_of(MAX_SYNC_PAYLOAD - 1))
    assert "FunctionError" not in answer
    assert json.loads(answer["Payload"].read()) == {"keys": 1}


def test_an_asynchronous_request_over_1_mib_is_refused_with_413(lambda_client: Any) -> None:
    with pytest.raises(ClientError) as refused:
        lambda_client.invoke(
            FunctionName="limits-Size", InvocationType="Event", Payload=event_of(MAX_EVENT_PAYLOAD + 1)
        )
    error = refused.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert error["Error"]["Code"] == "RequestEntityTooLargeException"
    assert error["Error"]["Message"] == (
        "1048577 byte payload is too large for the Event invocation type (limit 1048576 bytes)"
    )
    accepted = lambda_client.invoke(
        FunctionName="limits-Size", InvocationType="Event", Payload=event_of(MAX_EVENT_PAYLOAD)
    )
    assert accepted["StatusCode"] == 202


def test_a_response_over_the_limit_is_a_function_error(lambda_client: Any) -> None:
    fits = lambda_client.invoke(
        FunctionName="limits-Answer", Payload=json.dumps({"bytes": MAX_RESPONSE_PAYLOAD})
    )
    assert "FunctionError" not in fits
    assert len(fits["Payload"].read()) == MAX_RESPONSE_PAYLOAD == 6291556

    too_large = lambda_client.invoke(
        FunctionName="limits-Answer", Payload=json.dumps({"bytes": MAX_RESPONSE_PAYLOAD + 1})
    )
    assert too_large["StatusCode"] == 200
    assert too_large["FunctionError"] == "Unhandled"
    assert json.loads(too_large["Payload"].read()) == {
        "errorType": "Function.ResponseSizeTooLarge",
        "errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
    }
