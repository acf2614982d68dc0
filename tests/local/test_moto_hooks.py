"""The runtime's hooks into moto: they change what moto costs, never what it answers."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from filepipe.local import moto_hooks
from filepipe.local.services.awslambda.invoke import InvokeResult
from filepipe.local.services.awslambda.runner import Throttled


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


def _object_answers(s3: Any, bucket: str, key: str) -> list[Any]:
    """What S3 answers about an object: its bytes, ranges of them and its headers (no dates or ids)."""
    volatile = {"date", "x-amz-request-id", "x-amzn-requestid", "x-amz-id-2", "last-modified"}
    answers: list[Any] = []
    for extra in ({}, {"Range": "bytes=0-99"}, {"Range": "bytes=1000-"}, {"Range": "bytes=-10"}):
        got = s3.get_object(Bucket=bucket, Key=key, **extra)
        headers = {k: v for k, v in got["ResponseMetadata"]["HTTPHeaders"].items() if k not in volatile}
        answers.append((got["Body"].read(), got["ETag"], got.get("ContentRange"), headers))
    head = s3.head_object(Bucket=bucket, Key=key)["ResponseMetadata"]["HTTPHeaders"]
    answers.append({k: v for k, v in head.items() if k not in volatile})
    return answers


def _without_version_ids(answers: list[Any]) -> list[Any]:
    """Answers with the version ids left out: two uploads never share one."""
    stripped: list[Any] = []
    for answer in answers:
        if isinstance(answer, dict):
            stripped.append({k: v for k, v in answer.items() if k != "x-amz-version-id"})
        else:
            body, etag, content_range, headers = answer
            stripped.append((body, etag, content_range, _without_version_ids([headers])[0]))
    return stripped


def test_objects_in_memory_answer_as_moto_answers_from_its_spooled_file(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    moto_hooks._share_object_bytes()
    data = bytes(range(256)) * 12_000  # ~3 MB: in memory with the hook's buffer size, on disk below
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="hooks-memory")
        s3.put_bucket_versioning(Bucket="hooks-memory", VersioningConfiguration={"Status": "Enabled"})
        answers = {}
        for buffer_size in (str(moto_hooks.KEY_BUFFER_BYTES), "1024"):
            monkeypatch.setenv("MOTO_S3_DEFAULT_KEY_BUFFER_SIZE", buffer_size)
            key = f"photo-{buffer_size}"
            put = s3.put_object(Bucket="hooks-memory", Key=key, Body=data, ContentType="image/jpeg")
            assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'  # noqa: S324 - S3's ETag is an MD5
            copied = s3.copy_object(
                Bucket="hooks-memory", Key=f"{key}-copy", CopySource={"Bucket": "hooks-memory", "Key": key}
            )
            assert copied["CopyObjectResult"]["ETag"] == put["ETag"]
            versioned = s3.get_object(Bucket="hooks-memory", Key=key, VersionId=put["VersionId"])
            assert versioned["VersionId"] == put["VersionId"]
            assert versioned["Body"].read() == data
            answers[buffer_size] = [*_object_answers(s3, "hooks-memory", key)]
            answers[buffer_size] += _object_answers(s3, "hooks-memory", f"{key}-copy")[:-1]
        in_memory, on_disk = answers[str(moto_hooks.KEY_BUFFER_BYTES)], answers["1024"]
        assert _without_version_ids(in_memory) == _without_version_ids(on_disk)
        assert in_memory[0][0] == data
        assert in_memory[1][0] == data[:100]
        assert in_memory[2][0] == data[1000:]
        assert in_memory[3][0] == data[-10:]


def test_an_object_value_is_shared_not_copied_and_can_be_replaced() -> None:
    from moto.s3.models import FakeKey

    moto_hooks._share_object_bytes()
    data = b"x" * 100_000
    key = FakeKey("k", data, account_id="123456789012", region_name="us-east-1")
    spilled = FakeKey("s", data, account_id="123456789012", region_name="us-east-1", max_buffer_size=1024)
    try:
        assert key.value is data
        assert spilled.value == data
        assert key.etag == spilled.etag == f'"{hashlib.md5(data).hexdigest()}"'  # noqa: S324
        key.value = b"shorter"  # type: ignore[misc]
        assert key.value == b"shorter"
        assert key.size == len(b"shorter")
    finally:
        key.dispose()
        spilled.dispose()


def _bodies_with_then_without_the_cache(
    calls: Callable[[], None], bodies: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> list[bytes]:
    """Run ``calls`` with the serializer cache (the bodies returned), then without it (into ``bodies``)."""
    from moto.core.serialize import ResponseSerializer

    calls()
    cached = list(bodies)
    bodies.clear()
    cached_value: Any = ResponseSerializer.get_value
    monkeypatch.setattr(ResponseSerializer, "get_value", cached_value.original)
    structure: Any = ResponseSerializer._serialize_type_structure
    monkeypatch.setattr(ResponseSerializer, "_serialize_type_structure", structure.original)
    calls()
    return cached


def test_serialized_dynamodb_answers_are_the_bytes_moto_serializes_without_the_cache(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:

    moto_hooks._cache_serializer_aliases()
    item = {
        "pk": {"S": "file#1"},
        "size": {"N": "5600000"},
        "blob": {"B": b"\x00\x01"},
        "tags": {"SS": ["a", "b"]},
        "ready": {"BOOL": True},
        "gone": {"NULL": True},
        "thumbnails": {"L": [{"M": {"size": {"N": "256"}, "key": {"S": "t/1.jpg"}}}, {"S": "x"}]},
        "meta": {"M": {"exif": {"M": {"camera": {"S": "phone"}}}, "sizes": {"NS": ["1", "2"]}}},
    }
    bodies: list[bytes] = []
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName="hooks-files",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.put_item(TableName="hooks-files", Item={**item, "status": {"S": "READY"}})
        for operation in ("GetItem", "UpdateItem"):
            dynamodb.meta.events.register(
                f"after-call.dynamodb.{operation}",
                lambda http_response, **_: bodies.append(http_response.content),
            )

        def calls() -> None:
            dynamodb.get_item(TableName="hooks-files", Key={"pk": {"S": "file#1"}})
            dynamodb.update_item(
                TableName="hooks-files",
                Key={"pk": {"S": "file#1"}},
                UpdateExpression="SET #s = :s",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":s": {"S": "READY"}},
                ReturnValues="ALL_NEW",
            )

        cached = _bodies_with_then_without_the_cache(calls, bodies, monkeypatch)
    assert len(cached) == 2
    assert cached == bodies
    assert json.loads(cached[0])["Item"]["thumbnails"] == item["thumbnails"]
    assert json.loads(cached[1])["Attributes"]["meta"] == item["meta"]


def test_other_services_serialize_the_same_bytes_with_and_without_the_cache(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:

    moto_hooks._cache_serializer_aliases()
    bodies: list[bytes] = []
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        s3 = boto3.client("s3", region_name="us-east-1")
        url = sqs.create_queue(QueueName="hooks-queue", Attributes={"VisibilityTimeout": "45"})["QueueUrl"]
        s3.create_bucket(Bucket="hooks-listing")
        for name in ("a.jpg", "b/c.png"):
            s3.put_object(Bucket="hooks-listing", Key=name, Body=b"bytes", Metadata={"owner": "x"})
        for client, operation in ((sqs, "GetQueueAttributes"), (sqs, "ListQueues"), (s3, "ListObjectsV2")):
            client.meta.events.register(
                f"after-call.{client.meta.service_model.endpoint_prefix}.{operation}",
                lambda http_response, **_: bodies.append(http_response.content),
            )

        def calls() -> None:
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
            sqs.list_queues()
            s3.list_objects_v2(Bucket="hooks-listing")

        cached = _bodies_with_then_without_the_cache(calls, bodies, monkeypatch)
    assert len(cached) == 3
    assert cached == bodies
    assert b"VisibilityTimeout" in cached[0]


def _stored_key(bucket: str, key: str, version_id: str | None = None) -> Any:
    from moto.s3.models import s3_backends

    backend = s3_backends["123456789012"]["aws"]
    return backend.get_object(bucket, key, version_id=version_id)


def _on_disk(bucket: str, key: str, version_id: str | None = None) -> bool:
    return bool(_stored_key(bucket, key, version_id)._value_buffer._rolled)


def test_a_copy_shares_its_source_bytes_and_adds_no_memory(aws_env: None) -> None:
    moto_hooks._share_object_bytes()
    memory = moto_hooks.object_memory()
    data = bytes(range(256)) * 4_000
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in ("hooks-ingest", "hooks-files"):
            s3.create_bucket(Bucket=bucket)
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        before = memory.held_bytes
        put = s3.put_object(Bucket="hooks-ingest", Key="upload", Body=data)
        assert memory.held_bytes == before + len(data)
        s3.copy_object(
            Bucket="hooks-files",
            Key="file",
            CopySource={"Bucket": "hooks-ingest", "Key": "upload", "VersionId": put["VersionId"]},
            MetadataDirective="REPLACE",
            ContentType="image/jpeg",
        )
        s3.copy_object(Bucket="hooks-files", Key="again", CopySource={"Bucket": "hooks-files", "Key": "file"})
        assert memory.held_bytes == before + len(data)
        assert _stored_key("hooks-files", "file").value is _stored_key("hooks-ingest", "upload").value
        assert s3.get_object(Bucket="hooks-files", Key="again")["Body"].read() == data

        s3.delete_object(Bucket="hooks-ingest", Key="upload", VersionId=put["VersionId"])
        assert memory.held_bytes == before + len(data)  # the copies still hold the bytes
        for key in ("file", "again"):
            version = s3.head_object(Bucket="hooks-files", Key=key)["VersionId"]
            s3.delete_object(Bucket="hooks-files", Key=key, VersionId=version)
        assert memory.held_bytes == before


def test_past_the_budget_objects_go_to_disk_and_answer_the_same(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    moto_hooks._share_object_bytes()
    memory = moto_hooks.object_memory()
    data = bytes(range(256)) * 12_000
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="hooks-budget")
        s3.put_bucket_versioning(Bucket="hooks-budget", VersioningConfiguration={"Status": "Enabled"})
        monkeypatch.setattr(memory, "budget", memory.held_bytes + len(data))
        answers = {}
        versions = {}
        for key in ("in-memory", "on-disk"):
            put = s3.put_object(Bucket="hooks-budget", Key=key, Body=data, ContentType="image/jpeg")
            assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'  # noqa: S324 - S3's ETag is an MD5
            versions[key] = put["VersionId"]
            copied = s3.copy_object(
                Bucket="hooks-budget", Key=f"{key}-copy", CopySource={"Bucket": "hooks-budget", "Key": key}
            )
            assert copied["CopyObjectResult"]["ETag"] == put["ETag"]
            versioned = s3.get_object(Bucket="hooks-budget", Key=key, VersionId=put["VersionId"])
            assert (versioned["VersionId"], versioned["Body"].read()) == (put["VersionId"], data)
            answers[key] = [*_object_answers(s3, "hooks-budget", key)]
            answers[key] += _object_answers(s3, "hooks-budget", f"{key}-copy")[:-1]
        assert memory.held_bytes == memory.budget
        assert [_on_disk("hooks-budget", key) for key in ("in-memory", "in-memory-copy")] == [False, False]
        assert [_on_disk("hooks-budget", key) for key in ("on-disk", "on-disk-copy")] == [True, True]
        assert _without_version_ids(answers["in-memory"]) == _without_version_ids(answers["on-disk"])
        assert answers["on-disk"][1][0] == data[:100]
        assert answers["on-disk"][3][0] == data[-10:]
        listed = s3.list_object_versions(Bucket="hooks-budget", Prefix="on-disk")["Versions"]
        assert versions["on-disk"] in {version["VersionId"] for version in listed}


def test_deleting_or_overwriting_objects_frees_their_budget(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    moto_hooks._share_object_bytes()
    memory = moto_hooks.object_memory()
    first, second = b"a" * 300_000, b"b" * 300_000
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="hooks-free")
        before = memory.held_bytes
        monkeypatch.setattr(memory, "budget", before + len(first))
        s3.put_object(Bucket="hooks-free", Key="one", Body=first)
        s3.put_object(Bucket="hooks-free", Key="two", Body=second)
        assert (_on_disk("hooks-free", "one"), _on_disk("hooks-free", "two")) == (False, True)
        assert memory.held_bytes == before + len(first)

        s3.delete_object(Bucket="hooks-free", Key="one")
        assert memory.held_bytes == before
        s3.put_object(Bucket="hooks-free", Key="three", Body=second)
        assert not _on_disk("hooks-free", "three")
        # The new bytes arrive while the old ones are still stored (no room), then the old ones go.
        s3.put_object(Bucket="hooks-free", Key="three", Body=first)
        assert _on_disk("hooks-free", "three")
        assert memory.held_bytes == before
        s3.put_object(Bucket="hooks-free", Key="four", Body=first)
        assert not _on_disk("hooks-free", "four")
        s3.delete_objects(
            Bucket="hooks-free", Delete={"Objects": [{"Key": "two"}, {"Key": "three"}, {"Key": "four"}]}
        )
        assert memory.held_bytes == before
        assert s3.list_objects_v2(Bucket="hooks-free").get("KeyCount") == 0


def test_an_object_memory_setting_must_be_whole_mebibytes() -> None:
    variable = moto_hooks.OBJECT_MEMORY_VARIABLE
    assert moto_hooks.object_memory_budget({}) == 512 * 2**20
    assert moto_hooks.object_memory_budget({variable: "64"}) == 64 * 2**20
    assert moto_hooks.object_memory_budget({variable: "0"}) == 0
    for bad in ("", "lots", "1.5", "-1", "512MB"):
        with pytest.raises(ValueError, match=variable):
            moto_hooks.object_memory_budget({variable: bad})


def test_the_runtime_refuses_to_start_with_a_bad_object_memory_setting(tmp_path: Path) -> None:
    probes = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(3)]
    for probe in probes:
        probe.bind(("127.0.0.1", 0))
    ports = [str(probe.getsockname()[1]) for probe in probes]
    for probe in probes:
        probe.close()
    started = subprocess.run(
        [
            *(sys.executable, "-m", "filepipe.cli", "local", "--no-clamd", "--state-dir", str(tmp_path)),
            *("--port", ports[0], "--api-port", ports[1], "--aws-port", ports[2]),
        ],
        env={**os.environ, moto_hooks.OBJECT_MEMORY_VARIABLE: "lots"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert started.returncode == 1
    assert f"start-up failed: {moto_hooks.OBJECT_MEMORY_VARIABLE} must be a whole number" in started.stderr
    assert "is ready" not in started.stdout


def test_a_release_while_the_account_is_busy_is_settled_before_the_next_hold() -> None:
    memory = moto_hooks.ObjectMemory(budget=10)
    stored, later = b"12345678", b"abc"
    token = memory.hold(stored)
    assert token is not None
    assert memory.hold(later) is None
    with memory._lock:  # as when garbage collection finalizes a buffer in the middle of a hold
        memory.release(token)
    assert memory.hold(later) is not None
    assert memory.held_bytes == len(later)
