"""The runtime's hooks into moto: they change what moto costs, never what it answers."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from filepipe.lambdas import InvokeResult
from filepipe.local import moto_hooks
from filepipe.local.runner import Throttled


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

    return moto_hooks._invoke_task_directly(runner, sdk), runner, through_sdk


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


def test_a_copy_keeps_the_etag_of_its_source_without_hashing_again(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import moto.s3.models

    moto_hooks._reuse_copied_etags()
    hashes: list[int] = []
    md5_hash = moto.s3.models.md5_hash

    def counted_md5(*args: Any) -> Any:
        hashes.append(1)
        return md5_hash(*args)

    monkeypatch.setattr(moto.s3.models, "md5_hash", counted_md5)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="hooks-source")
        data = b"filepipe" * 100_000
        put = s3.put_object(Bucket="hooks-source", Key="original", Body=data)
        assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'  # noqa: S324 - S3's ETag is an MD5
        hashes.clear()
        copied = s3.copy_object(
            Bucket="hooks-source", Key="copy", CopySource={"Bucket": "hooks-source", "Key": "original"}
        )
        assert copied["CopyObjectResult"]["ETag"] == put["ETag"]
        assert hashes == []
        assert s3.head_object(Bucket="hooks-source", Key="copy")["ETag"] == put["ETag"]
        s3.put_object(Bucket="hooks-source", Key="later", Body=b"other bytes")
        assert s3.head_object(Bucket="hooks-source", Key="later")["ETag"] == (
            f'"{hashlib.md5(b"other bytes").hexdigest()}"'  # noqa: S324
        )
