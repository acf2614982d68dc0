"""Promote and quarantine: one server-side copy per object, with the detected type and the source version."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

import common.storage
from common.errors import SourceMissing
from common.model import FileRef
from common.storage import ObjectStore
from promote.logic import SOURCE_VERSION, promote, quarantine
from tests.iam import s3_as
from tests.stack import StackFixture, ingest_bucket, put_upload, record_s3_requests

INGEST = "filepipe-ingest-test"
FILES = "filepipe-files-test"
QUARANTINE = "filepipe-quarantine-test"
OWNER = "5f0c8a52-2d7e-4f7b-9a39-0c1d2e3f4a5b"
DATA = random.Random(4).randbytes(300_000)


@pytest.fixture
def s3(aws_env: None) -> Iterator[Any]:
    with mock_aws():
        client = ingest_bucket(INGEST)
        for bucket in (FILES, QUARANTINE):
            client.create_bucket(Bucket=bucket)
        yield client


def _stored(s3: Any, bucket: str, key: str) -> tuple[bytes, str, dict[str, str]]:
    response = s3.get_object(Bucket=bucket, Key=key)
    return response["Body"].read(), response["ContentType"], response["Metadata"]


def test_a_promotion_is_one_copy_request_and_a_retry_copies_nothing(s3: Any) -> None:
    ref = put_upload(s3, INGEST, OWNER, DATA)
    calls = record_s3_requests(s3)
    key = promote(ObjectStore(s3), ref, len(DATA), FILES, "image/png")
    assert calls == ["HeadObject", "CopyObject"]  # is it there already? then the copy itself
    assert _stored(s3, FILES, key) == (DATA, "image/png", {SOURCE_VERSION: ref.version})
    calls.clear()
    assert promote(ObjectStore(s3), ref, len(DATA), FILES, "image/png") == key
    assert calls == ["HeadObject"]


def test_a_source_too_large_for_one_copy_goes_through_the_transfer_manager(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(common.storage, "MAX_SINGLE_COPY_BYTES", len(DATA) - 1)
    ref = put_upload(s3, INGEST, OWNER, DATA)
    calls = record_s3_requests(s3)
    key = promote(ObjectStore(s3), ref, len(DATA), FILES, "image/png")
    assert "HeadObject" in calls[1:]  # the transfer manager sizes the source itself
    assert _stored(s3, FILES, key) == (DATA, "image/png", {SOURCE_VERSION: ref.version})


def test_quarantine_moves_the_scanned_version_in_one_copy(s3: Any) -> None:
    ref = put_upload(s3, INGEST, OWNER, DATA)
    calls = record_s3_requests(s3)
    key = quarantine(ObjectStore(s3), ref, len(DATA), QUARANTINE, "Eicar-Signature")
    assert calls == ["HeadObject", "CopyObject", "DeleteObject"]
    stored = _stored(s3, QUARANTINE, key)
    assert stored == (
        DATA,
        "application/octet-stream",
        {SOURCE_VERSION: ref.version, "signature": "Eicar-Signature"},
    )


# Under the roles the template gives the two functions, S3 answering as on AWS (tests/iam.py).


def _stack_upload(stack: StackFixture) -> FileRef:
    return put_upload(stack.client("s3"), stack.physical("IngestBucket"), OWNER, DATA)


def test_under_its_role_a_promotion_copies_once_and_a_retry_only_looks(stack: StackFixture) -> None:
    ref = _stack_upload(stack)
    s3 = s3_as(stack, "PromoteFunction")
    calls = record_s3_requests(s3)
    files = stack.physical("FilesBucket")

    key = promote(ObjectStore(s3), ref, len(DATA), files, "image/png")
    assert promote(ObjectStore(s3), ref, len(DATA), files, "image/png") == key
    assert calls == ["HeadObject", "CopyObject", "HeadObject"]
    assert _stored(stack.client("s3"), files, key) == (DATA, "image/png", {SOURCE_VERSION: ref.version})


def test_under_its_role_a_quarantine_moves_the_upload_and_a_retry_finishes_quietly(
    stack: StackFixture,
) -> None:
    ref = _stack_upload(stack)
    store = ObjectStore(s3_as(stack, "QuarantineFunction"))
    bucket = stack.physical("QuarantineBucket")

    key = quarantine(store, ref, len(DATA), bucket, "Eicar-Signature")
    assert quarantine(store, ref, len(DATA), bucket, "Eicar-Signature") == key  # the upload is gone by now
    assert _stored(stack.client("s3"), bucket, key)[0] == DATA
    listed = stack.client("s3").list_object_versions(Bucket=ref.bucket, Prefix=ref.key)
    assert listed.get("Versions", []) == []


COPIES: dict[str, Callable[[ObjectStore, FileRef, StackFixture], str]] = {
    "PromoteFunction": lambda store, ref, stack: promote(
        store, ref, len(DATA), stack.physical("FilesBucket"), "image/png"
    ),
    "QuarantineFunction": lambda store, ref, stack: quarantine(
        store, ref, len(DATA), stack.physical("QuarantineBucket"), "Eicar-Signature"
    ),
}


@pytest.mark.parametrize("logical_id", COPIES)
def test_under_its_role_an_upload_gone_before_the_copy_is_source_missing(
    stack: StackFixture, logical_id: str
) -> None:
    ref = _stack_upload(stack)
    stack.client("s3").delete_object(Bucket=ref.bucket, Key=ref.key, VersionId=ref.version)
    store = ObjectStore(s3_as(stack, logical_id))

    with pytest.raises(SourceMissing):
        COPIES[logical_id](store, ref, stack)


def test_a_refused_look_at_the_destination_stays_an_error_and_copies_nothing(stack: StackFixture) -> None:
    ref = _stack_upload(stack)
    store = ObjectStore(s3_as(stack, "PromoteFunction"))
    elsewhere = stack.physical("QuarantineBucket")  # the promote role may neither read nor write there

    with pytest.raises(ClientError) as refused:
        promote(store, ref, len(DATA), elsewhere, "image/png")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert stack.client("s3").list_objects_v2(Bucket=elsewhere).get("KeyCount") == 0
