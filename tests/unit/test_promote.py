"""Promote and quarantine: one server-side copy per object, with the detected type and the source version."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

import common.storage
from common.storage import ObjectStore
from promote.logic import SOURCE_VERSION, promote, quarantine
from tests.stack import ingest_bucket, put_upload, record_s3_requests

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
