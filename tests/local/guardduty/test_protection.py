"""One scan, in process: clamd's answer, the object's size and S3's answers give the documented statuses."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

import filepipe.local.services.guardduty.protection as protection_module
from filepipe.clamd import NOT_INSTALLED, LocalClamd, eicar_bytes
from filepipe.local import moto_patches
from filepipe.local.services.guardduty import events
from filepipe.local.services.guardduty.patches import offer_created_objects
from filepipe.local.services.guardduty.plans import MalwareProtectionPlan, create_plan
from filepipe.local.services.guardduty.protection import (
    MalwareProtection,
    ScanRequest,
    max_object_bytes,
)
from scan.clamd import parse_scan_reply

REGION = "us-east-1"
ACCOUNT = "123456789012"
BUCKET = "uploads"
UNTAGGED_BUCKET = "untagged-uploads"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/malware-scan"
MAX_BYTES = 1000


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


@pytest.fixture(scope="module")
def clamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalClamd]:
    if not LocalClamd.is_available():
        pytest.skip(NOT_INSTALLED)
    with LocalClamd(tmp_path_factory.mktemp("clamd"), max_bytes=1024 * 1024) as running_clamd:
        yield running_clamd


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        s3 = client("s3")
        for bucket in (BUCKET, UNTAGGED_BUCKET):
            s3.create_bucket(Bucket=bucket)
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        yield


@pytest.fixture
def plan(aws: None) -> MalwareProtectionPlan:
    return create_plan(
        ACCOUNT,
        REGION,
        role_arn=ROLE_ARN,
        bucket=BUCKET,
        object_prefixes=["uploads/"],
        tagging_status="ENABLED",
    )


def _protection(clamd_address: str | None, published: list[dict[str, Any]]) -> MalwareProtection:
    return MalwareProtection(
        account=ACCOUNT,
        region=REGION,
        clients=client,
        publish=published.append,
        role_session=lambda plan: None,  # in process there is no IAM: the requests are moto's
        clamd_address=clamd_address,
        max_object_bytes=MAX_BYTES,
    )


def _upload(plan: MalwareProtectionPlan, key: str, body: bytes, **extra: Any) -> ScanRequest:
    stored = client("s3").put_object(Bucket=plan.bucket, Key=key, Body=body, **extra)
    return ScanRequest(plan, plan.bucket, key, stored["VersionId"], stored["ETag"].strip('"'))


def _tags(request: ScanRequest) -> dict[str, str]:
    found = client("s3").get_object_tagging(
        Bucket=request.bucket, Key=request.key, VersionId=request.version_id
    )
    return {tag["Key"]: tag["Value"] for tag in found["TagSet"]}


def _closed_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{probe.getsockname()[1]}"


def test_a_clean_object_is_no_threats_found_and_tagged_so(
    plan: MalwareProtectionPlan, clamd: LocalClamd
) -> None:
    published: list[dict[str, Any]] = []
    request = _upload(plan, "uploads/clean.txt", b"hello")
    client("s3").put_object(Bucket=BUCKET, Key="uploads/clean.txt", Body=b"a later version")

    _protection(clamd.address, published).process(request)

    [event] = published
    assert event["detail-type"] == events.OBJECT_SCAN_RESULT
    assert event["resources"] == [request.plan.arn]
    assert event["detail"]["scanStatus"] == "COMPLETED"
    assert event["detail"]["scanResultDetails"] == {"scanResultStatus": "NO_THREATS_FOUND", "threats": None}
    assert event["detail"]["s3ObjectDetails"] == {
        "bucketName": BUCKET,
        "objectKey": "uploads/clean.txt",
        "eTag": request.etag,
        "versionId": request.version_id,
        "s3Throttled": False,
    }
    assert _tags(request) == {"GuardDutyMalwareScanStatus": "NO_THREATS_FOUND"}
    latest = client("s3").get_object_tagging(Bucket=BUCKET, Key="uploads/clean.txt")["TagSet"]
    assert latest == []  # the version scanned is tagged, not the one uploaded since


def test_eicar_is_threats_found_naming_clamds_signature(
    plan: MalwareProtectionPlan, clamd: LocalClamd
) -> None:
    published: list[dict[str, Any]] = []
    request = _upload(plan, "uploads/eicar.com", eicar_bytes())

    verdict = _protection(clamd.address, published).process(request)

    assert (verdict.scan_status, verdict.result_status) == ("COMPLETED", "THREATS_FOUND")
    assert published[0]["detail"]["scanResultDetails"] == {
        "scanResultStatus": "THREATS_FOUND",
        "threats": [{"name": "Filepipe.Test.EICAR-Body.UNOFFICIAL"}],
    }
    assert _tags(request) == {"GuardDutyMalwareScanStatus": "THREATS_FOUND"}


def test_an_object_over_the_maximum_size_is_unsupported_before_clamd_reads_it(
    plan: MalwareProtectionPlan,
) -> None:
    published: list[dict[str, Any]] = []
    request = _upload(plan, "uploads/large.bin", b"x" * (MAX_BYTES + 1))

    # clamd is not even reachable: the size alone decides.
    verdict = _protection(_closed_port(), published).process(request)

    assert (verdict.scan_status, verdict.result_status) == ("SKIPPED", "UNSUPPORTED")
    assert _tags(request) == {"GuardDutyMalwareScanStatus": "UNSUPPORTED"}


def test_an_object_of_exactly_the_maximum_size_is_scanned(
    plan: MalwareProtectionPlan, clamd: LocalClamd
) -> None:
    request = _upload(plan, "uploads/edge.bin", b"x" * MAX_BYTES)

    assert _protection(clamd.address, []).process(request).result_status == "NO_THREATS_FOUND"


def test_an_archive_clamd_gives_up_on_is_unsupported(
    plan: MalwareProtectionPlan, monkeypatch: pytest.MonkeyPatch
) -> None:
    class ClamdAtItsLimit:
        """clamd's answer for an archive past MaxFiles (AlertExceedsMax): what GuardDuty skips too."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def instream(self, chunks: Iterator[bytes]) -> Any:
            list(chunks)
            return parse_scan_reply(
                "stream: Heuristics.Limits.Exceeded.MaxFiles FOUND", whole_stream_sent=True
            )

    monkeypatch.setattr(protection_module, "ClamdClient", ClamdAtItsLimit)
    request = _upload(plan, "uploads/archive.zip", b"PK" + b"0" * 100)

    verdict = _protection("tcp://127.0.0.1:9", []).process(request)

    assert (verdict.scan_status, verdict.result_status) == ("SKIPPED", "UNSUPPORTED")


@pytest.mark.parametrize("address", ["unreachable", None], ids=["clamd-unreachable", "no-clamd"])
def test_without_a_clamd_to_answer_the_scan_failed(plan: MalwareProtectionPlan, address: str | None) -> None:
    published: list[dict[str, Any]] = []
    request = _upload(plan, "uploads/clean.txt", b"hello")

    verdict = _protection(_closed_port() if address else None, published).process(request)

    assert (verdict.scan_status, verdict.result_status) == ("FAILED", "FAILED")
    assert published[0]["detail"]["scanResultDetails"]["scanResultStatus"] == "FAILED"
    assert _tags(request) == {"GuardDutyMalwareScanStatus": "FAILED"}


def test_a_version_gone_before_its_scan_is_access_denied(
    plan: MalwareProtectionPlan, clamd: LocalClamd
) -> None:
    request = _upload(plan, "uploads/gone.txt", b"hello")
    client("s3").delete_object(Bucket=BUCKET, Key=request.key, VersionId=request.version_id)
    published: list[dict[str, Any]] = []

    verdict = _protection(clamd.address, published).process(request)

    assert (verdict.scan_status, verdict.result_status) == ("SKIPPED", "ACCESS_DENIED")
    assert [event["detail-type"] for event in published] == [
        events.OBJECT_SCAN_RESULT,
        events.POST_SCAN_ACTION_FAILED,
    ]
    assert published[1]["detail"]["postScanActions"] == [
        {"actionType": "TAGGING", "failureReason": "ACCESS_DENIED"}
    ]


def test_an_object_with_ten_tags_cannot_take_guarddutys_and_says_so(
    plan: MalwareProtectionPlan, clamd: LocalClamd
) -> None:
    ten = "&".join(f"t{n}=v{n}" for n in range(10))
    request = _upload(plan, "uploads/tagged.txt", b"hello", Tagging=ten)
    published: list[dict[str, Any]] = []

    _protection(clamd.address, published).process(request)

    result, failure = published
    assert result["detail"]["scanResultDetails"]["scanResultStatus"] == "NO_THREATS_FOUND"
    assert failure["detail-type"] == events.POST_SCAN_ACTION_FAILED
    assert failure["detail"]["postScanActions"] == [
        {"actionType": "TAGGING", "failureReason": "MAX_TAG_LIMIT_EXCEEDED"}
    ]
    assert failure["detail"]["s3ObjectDetails"] == result["detail"]["s3ObjectDetails"]
    assert len(_tags(request)) == 10
    assert "GuardDutyMalwareScanStatus" not in _tags(request)


def test_a_new_scan_replaces_guarddutys_tag_and_keeps_the_others(
    plan: MalwareProtectionPlan, clamd: LocalClamd
) -> None:
    nine = "&".join(f"t{n}=v{n}" for n in range(9))
    request = _upload(plan, "uploads/rescanned.txt", b"hello", Tagging=nine)
    _protection(None, []).process(request)  # FAILED, tagged so
    published: list[dict[str, Any]] = []

    _protection(clamd.address, published).process(request)

    assert len(published) == 1
    tags = _tags(request)
    assert len(tags) == 10
    assert tags["GuardDutyMalwareScanStatus"] == "NO_THREATS_FOUND"


def test_a_plan_without_tagging_leaves_the_object_untagged(aws: None, clamd: LocalClamd) -> None:
    untagged = create_plan(
        ACCOUNT, REGION, role_arn=ROLE_ARN, bucket=UNTAGGED_BUCKET, tagging_status="DISABLED"
    )
    request = _upload(untagged, "a.txt", b"hello")
    published: list[dict[str, Any]] = []

    _protection(clamd.address, published).process(request)

    assert len(published) == 1
    assert _tags(request) == {}


def test_each_way_s3_creates_an_object_is_offered_once(plan: MalwareProtectionPlan) -> None:
    offered: list[tuple[str, ...]] = []
    s3 = client("s3")
    uninstall = moto_patches.install(offer_created_objects, lambda *args: offered.append(args))
    try:
        put = s3.put_object(Bucket=BUCKET, Key="uploads/put", Body=b"1")
        copied = s3.copy_object(
            Bucket=BUCKET, Key="uploads/copy", CopySource={"Bucket": BUCKET, "Key": "uploads/put"}
        )
        upload = s3.create_multipart_upload(Bucket=BUCKET, Key="uploads/multipart")["UploadId"]
        part = s3.upload_part(
            Bucket=BUCKET, Key="uploads/multipart", UploadId=upload, PartNumber=1, Body=b"p" * 10
        )
        completed = s3.complete_multipart_upload(
            Bucket=BUCKET,
            Key="uploads/multipart",
            UploadId=upload,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
        )
        s3.put_object_tagging(
            Bucket=BUCKET, Key="uploads/put", Tagging={"TagSet": [{"Key": "a", "Value": "b"}]}
        )
        s3.delete_object(Bucket=BUCKET, Key="uploads/put")
        s3.create_bucket(Bucket="unversioned")
        s3.put_object(Bucket="unversioned", Key="k", Body=b"1")
    finally:
        uninstall()

    assert offered == [
        (ACCOUNT, REGION, BUCKET, "uploads/put", put["VersionId"], put["ETag"].strip('"')),
        (
            ACCOUNT,
            REGION,
            BUCKET,
            "uploads/copy",
            copied["VersionId"],
            copied["CopyObjectResult"]["ETag"].strip('"'),
        ),
        (ACCOUNT, REGION, BUCKET, "uploads/multipart", completed["VersionId"], completed["ETag"].strip('"')),
        (ACCOUNT, REGION, "unversioned", "k", None, put["ETag"].strip('"')),
    ]


def test_an_object_is_offered_once_its_request_stored_its_tags_too(aws: None) -> None:
    from moto.s3.models import s3_backends

    backend = s3_backends[ACCOUNT]["aws"]
    tags_when_offered: list[dict[str, str]] = []

    def sink(account: str, region: str, bucket: str, key: str, version: str | None, etag: str) -> None:
        stored = backend.get_object(bucket, key, version)
        assert stored is not None
        tags_when_offered.append(backend.tagger.get_tag_dict_for_resource(stored.arn))

    uninstall = moto_patches.install(offer_created_objects, sink)
    try:
        client("s3").put_object(Bucket=BUCKET, Key="uploads/tagged", Body=b"1", Tagging="owner=u1")
    finally:
        uninstall()

    # moto tags a PUT's object after it stored it; a scan begun before would lose its tag to the request's.
    assert tags_when_offered == [{"owner": "u1"}]


def test_scans_run_on_the_pool_and_only_for_keys_a_plan_covers(
    plan: MalwareProtectionPlan, clamd: LocalClamd
) -> None:
    published: list[dict[str, Any]] = []
    threads: list[str] = []

    def publish(event: dict[str, Any]) -> None:
        threads.append(threading.current_thread().name)
        published.append(event)

    protection = MalwareProtection(
        account=ACCOUNT,
        region=REGION,
        clients=client,
        publish=publish,
        role_session=lambda plan: None,
        clamd_address=clamd.address,
    )
    stored = client("s3").put_object(Bucket=BUCKET, Key="uploads/d.txt", Body=b"hello")
    protection.start()
    try:
        protection.object_created(ACCOUNT, REGION, BUCKET, "outside/a.txt", "v0", "e")
        protection.object_created(ACCOUNT, "eu-west-1", BUCKET, "uploads/b.txt", "v0", "e")
        protection.object_created(ACCOUNT, REGION, "another-bucket", "uploads/c.txt", "v0", "e")
        protection.object_created(ACCOUNT, REGION, BUCKET, "uploads/d.txt", stored["VersionId"], "e")
        deadline = time.monotonic() + 10
        while not published and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        protection.stop()
    protection.object_created(ACCOUNT, REGION, BUCKET, "uploads/d.txt", stored["VersionId"], "e")  # stopped

    assert [event["detail"]["s3ObjectDetails"]["objectKey"] for event in published] == ["uploads/d.txt"]
    assert threads == ["guardduty_0"]  # the pool's, never the caller's


def test_the_maximum_size_comes_from_the_environment_or_is_guarddutys() -> None:
    assert max_object_bytes({}) == 100 * 10**9
    assert max_object_bytes({"FILEPIPE_LOCAL_GUARDDUTY_MAX_OBJECT_BYTES": "4096"}) == 4096
    for bad in ("-1", "4 KiB", ""):
        with pytest.raises(
            ValueError, match="FILEPIPE_LOCAL_GUARDDUTY_MAX_OBJECT_BYTES must be a whole number"
        ):
            max_object_bytes({"FILEPIPE_LOCAL_GUARDDUTY_MAX_OBJECT_BYTES": bad})
