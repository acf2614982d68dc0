"""moto's response serializer with the alias cache: the bytes it serves are the ones moto serializes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from filepipe.local import moto_core_patches, moto_patches


@pytest.fixture
def serializer_aliases() -> Iterator[None]:
    """The alias cache as `filepipe local` installs it, removed after the test.

    Tests ask for it before ``monkeypatch``, which then undoes its own changes to the serializer first.
    """
    uninstall = moto_patches.install(moto_core_patches.cache_serializer_aliases)
    yield
    uninstall()


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
    serializer_aliases: None, aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
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
    serializer_aliases: None, aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
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
