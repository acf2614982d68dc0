"""S3's patches to moto: objects shared rather than copied, within a memory budget; copies keep ETags.

They change what moto costs, never what it answers.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from filepipe.local import moto_patches
from filepipe.local.services.s3 import patches as s3_patches


@pytest.fixture
def shared_bytes() -> Iterator[None]:
    """Objects in memory share their bytes, as `filepipe local` installs it (removed after the test)."""
    uninstall = moto_patches.install(s3_patches.share_object_bytes)
    yield
    uninstall()


@pytest.fixture
def copied_etags() -> Iterator[None]:
    """Copies keep their source's ETag, as `filepipe local` installs it (removed after the test)."""
    uninstall = moto_patches.install(s3_patches.reuse_copied_etags)
    yield
    uninstall()


def test_a_copy_keeps_the_etag_of_its_source_without_hashing_again(
    copied_etags: None, aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import moto.s3.models

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
    shared_bytes: None, aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = bytes(range(256)) * 12_000  # ~3 MB: in memory with the patch's buffer size, on disk below
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="hooks-memory")
        s3.put_bucket_versioning(Bucket="hooks-memory", VersioningConfiguration={"Status": "Enabled"})
        answers = {}
        for buffer_size in (str(s3_patches.KEY_BUFFER_BYTES), "1024"):
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
        in_memory, on_disk = answers[str(s3_patches.KEY_BUFFER_BYTES)], answers["1024"]
        assert _without_version_ids(in_memory) == _without_version_ids(on_disk)
        assert in_memory[0][0] == data
        assert in_memory[1][0] == data[:100]
        assert in_memory[2][0] == data[1000:]
        assert in_memory[3][0] == data[-10:]


def test_an_object_value_is_shared_not_copied_and_can_be_replaced(shared_bytes: None) -> None:
    from moto.s3.models import FakeKey

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


def _stored_key(bucket: str, key: str, version_id: str | None = None) -> Any:
    from moto.s3.models import s3_backends

    backend = s3_backends["123456789012"]["aws"]
    return backend.get_object(bucket, key, version_id=version_id)


def _on_disk(bucket: str, key: str, version_id: str | None = None) -> bool:
    return bool(_stored_key(bucket, key, version_id)._value_buffer._rolled)


def test_a_copy_shares_its_source_bytes_and_adds_no_memory(shared_bytes: None, aws_env: None) -> None:
    memory = s3_patches.object_memory()
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
    shared_bytes: None, aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = s3_patches.object_memory()
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
    shared_bytes: None, aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = s3_patches.object_memory()
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
    variable = s3_patches.OBJECT_MEMORY_VARIABLE
    assert s3_patches.object_memory_budget({}) == 512 * 2**20
    assert s3_patches.object_memory_budget({variable: "64"}) == 64 * 2**20
    assert s3_patches.object_memory_budget({variable: "0"}) == 0
    for bad in ("", "lots", "1.5", "-1", "512MB"):
        with pytest.raises(ValueError, match=variable):
            s3_patches.object_memory_budget({variable: bad})


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
        env={**os.environ, s3_patches.OBJECT_MEMORY_VARIABLE: "lots"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert started.returncode == 1
    assert f"start-up failed: {s3_patches.OBJECT_MEMORY_VARIABLE} must be a whole number" in started.stderr
    assert "is ready" not in started.stdout


def test_a_release_while_the_account_is_busy_is_settled_before_the_next_hold() -> None:
    memory = s3_patches.ObjectMemory(budget=10)
    stored, later = b"12345678", b"abc"
    token = memory.hold(stored)
    assert token is not None
    assert memory.hold(later) is None
    with memory._lock:  # as when garbage collection finalizes a buffer in the middle of a hold
        memory.release(token)
    assert memory.hold(later) is not None
    assert memory.held_bytes == len(later)
