"""ProcessUpload end to end in moto: the real ASL from the template, the real handlers, a real clamd.

Each test runs with each Scanner (ClamAV's scan function, or GuardDuty's stand-in and the verdict function)
unless it is about one of them.
"""

from __future__ import annotations

import hashlib
import json
import socket
from typing import Any

import pytest

import common.aws
from common.model import FileRef, clean_prefix
from filepipe.clamd import eicar_bytes
from filepipe.local.services.awslambda.invoke import InvokeResult, invoke_in_process
from tests import images
from tests.workflow.conftest import PipelineFactory
from tests.workflow.harness import Pipeline, crash


def _error_code(record: dict[str, Any]) -> str:
    return str(record["error"]["code"])


def test_jpeg_becomes_ready_with_two_thumbnails(pipeline: Pipeline) -> None:
    photo = images.jpeg_with_exif((1600, 1200), with_gps=True)  # a phone photo: camera EXIF and GPS
    ref, execution = pipeline.process(photo, name="holiday.jpg")

    assert execution["status"] == "SUCCEEDED"
    record = pipeline.record(ref)
    assert record["status"] == "READY"
    assert record["contentType"] == "image/jpeg"
    if pipeline.scanner == "ClamAV":  # the scan reads every byte and hashes them on the way
        assert record["sha256"] == hashlib.sha256(photo).hexdigest()
    else:  # GuardDuty reads the object itself and reports no hash
        assert "sha256" not in record
    assert (record["width"], record["height"]) == (1600, 1200)
    # Rational EXIF values are stored as DynamoDB numbers and come back as they were read.
    assert record["exif"]["ExposureTime"] == 0.008
    assert record["exif"]["FNumber"] == 2.8
    assert "GPS" not in json.dumps(record)
    assert sorted(t["size"] for t in record["thumbnails"]) == [256, 1024]
    prefix = f"files/{ref.owner_id}/{ref.file_id}/"
    assert pipeline.keys(pipeline.clean, prefix) == sorted(
        [f"{prefix}original", f"{prefix}thumb-256.webp", f"{prefix}thumb-1024.webp"]
    )
    original = pipeline.s3.get_object(Bucket=pipeline.clean, Key=f"{prefix}original")
    assert original["Body"].read() == photo
    assert original["ContentType"] == "image/jpeg"
    assert pipeline.ingest_versions(ref) == [ref.version]  # kept until the ingest lifecycle expires it
    assert pipeline.keys(pipeline.quarantine) == []
    assert len(pipeline.sent_emails()) == 1


def test_iphone_style_heic_becomes_ready_with_upright_thumbnails(pipeline: Pipeline) -> None:
    photo = images.heic_with_exif((800, 600), orientation=6)
    ref, execution = pipeline.process(photo, name="IMG_0001.HEIC", declared_type="image/heic")

    assert execution["status"] == "SUCCEEDED"
    record = pipeline.record(ref)
    assert record["status"] == "READY"
    assert record["contentType"] == "image/heic"
    assert (record["width"], record["height"]) == (600, 800)
    assert {t["size"]: (t["width"], t["height"]) for t in record["thumbnails"]} == {
        256: (192, 256),
        1024: (600, 800),
    }
    original = pipeline.s3.get_object(
        Bucket=pipeline.clean, Key=f"files/{ref.owner_id}/{ref.file_id}/original"
    )
    assert original["Body"].read() == photo  # the original is served as uploaded, HEIC


def test_pdf_becomes_ready_without_thumbnails(pipeline: Pipeline) -> None:
    ref, execution = pipeline.process(images.pdf(pages=3), name="report.pdf", declared_type="application/pdf")

    assert execution["status"] == "SUCCEEDED"
    record = pipeline.record(ref)
    assert record["status"] == "READY"
    assert record["contentType"] == "application/pdf"
    assert record["pages"] == 3
    assert "thumbnails" not in record
    assert pipeline.router.calls["ThumbnailsFunction"] == 0
    assert pipeline.keys(pipeline.clean) == [f"files/{ref.owner_id}/{ref.file_id}/original"]


def test_executable_renamed_jpg_is_rejected(pipeline: Pipeline) -> None:
    ref, execution = pipeline.process(images.exe(), name="cat.jpg")

    assert execution["status"] == "SUCCEEDED"  # a rejection is a successful outcome of the workflow
    record = pipeline.record(ref)
    assert record["status"] == "REJECTED"
    assert _error_code(record) == "UNSUPPORTED_TYPE"
    assert pipeline.keys(pipeline.clean) == []
    assert pipeline.ingest_versions(ref) == [ref.version]
    assert pipeline.router.calls[pipeline.scan_function] == 0
    assert len(pipeline.sent_emails()) == 1


def test_jpeg_header_followed_by_a_script_is_rejected_by_the_thumbnail_decode(pipeline: Pipeline) -> None:
    """Every sniffer calls it a JPEG and the scanner finds nothing; its pixel data does not decode."""
    ref, execution = pipeline.process(images.jpeg_header_with_php(), name="cat.jpg")

    assert execution["status"] == "SUCCEEDED"
    record = pipeline.record(ref)
    assert record["status"] == "REJECTED"
    assert _error_code(record) == "CORRUPT_IMAGE"
    assert pipeline.router.calls["ThumbnailsFunction"] == 1
    assert pipeline.router.calls["PromoteFunction"] == 0
    assert pipeline.keys(pipeline.clean) == []  # neither the original nor any thumbnail
    assert pipeline.ingest_versions(ref) == [ref.version]
    assert len(pipeline.sent_emails()) == 1


def test_file_over_the_size_limit_is_rejected(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline(MaxFileBytes="1024")
    ref, execution = pipeline.process(b"a,b\n" * 1024, name="big.csv", declared_type="text/csv")

    assert execution["status"] == "SUCCEEDED"
    record = pipeline.record(ref)
    assert record["status"] == "REJECTED"
    assert _error_code(record) == "TOO_LARGE"
    assert pipeline.keys(pipeline.clean) == []


def test_eicar_is_quarantined_and_never_reaches_the_files_bucket(pipeline: Pipeline) -> None:
    ref, execution = pipeline.process(eicar_bytes(), name="invoice.txt", declared_type="text/plain")

    assert execution["status"] == "SUCCEEDED"
    record = pipeline.record(ref)
    assert record["status"] == "QUARANTINED"
    assert record["error"]["code"] == "MALWARE_FOUND"
    quarantined = pipeline.s3.get_object(
        Bucket=pipeline.quarantine, Key=f"quarantine/{ref.owner_id}/{ref.file_id}"
    )
    assert quarantined["Body"].read() == eicar_bytes()
    assert pipeline.keys(pipeline.clean) == []
    assert pipeline.ingest_versions(ref) == []  # moved, not copied
    emails = pipeline.sent_emails()
    assert len(emails) == 1
    assert "quarantined" in emails[0].subject


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("scanner", ["ClamAV"], indirect=True)
def test_scanner_down_is_retried_then_failed_with_a_dlq_message(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline(ClamdAddress=f"tcp://127.0.0.1:{_closed_port()}")
    ref, execution = pipeline.process(images.jpeg((64, 64)))

    assert execution["status"] == "FAILED"
    assert execution["error"] == "ScannerUnavailable"
    assert pipeline.router.calls["ScanFunction"] == 3  # the first try and two retries
    record = pipeline.record(ref)
    assert record["status"] == "FAILED"
    assert _error_code(record) == "ScannerUnavailable"
    assert pipeline.ingest_versions(ref) == [ref.version]
    assert pipeline.keys(pipeline.clean) == []

    pipeline.publish_status_change(execution)
    messages = pipeline.dlq_messages()
    assert len(messages) == 1
    assert messages[0]["name"] == ref.file_id
    assert messages[0]["executionArn"] == execution["executionArn"]
    assert messages[0]["error"] == "ScannerUnavailable"
    assert messages[0]["status"] == "FAILED"
    assert json.loads(messages[0]["input"])["file"]["fileId"] == ref.file_id


def test_dynamodb_throttled_twice_still_ends_ready(pipeline: Pipeline) -> None:
    throttled: list[str] = []

    def throttle(request: Any, **_: Any) -> Any:
        if len(throttled) >= 2:
            return None
        from botocore.awsrequest import AWSResponse
        from moto.core.botocore_stubber import MockRawResponse

        throttled.append(request.url)
        body = json.dumps(
            {
                "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                "message": "The level of configured provisioned throughput for the table was exceeded.",
            }
        ).encode()
        return AWSResponse(
            request.url, 400, {"Content-Type": "application/x-amz-json-1.0"}, MockRawResponse(body)
        )

    # The functions share the cached client, so the hook sees every record write they make.
    common.aws.client("dynamodb").meta.events.register_first("before-send.dynamodb.UpdateItem", throttle)
    ref, execution = pipeline.process(images.jpeg((320, 240)))

    assert len(throttled) == 2
    assert execution["status"] == "SUCCEEDED"
    assert pipeline.record(ref)["status"] == "READY"


def test_the_same_event_twice_gives_one_run_one_record_one_thumbnail_set_one_email(
    pipeline: Pipeline,
) -> None:
    ref = pipeline.upload(images.jpeg((800, 600)))
    [message] = pipeline.queued_start_messages()
    duplicate = dict(message, MessageId="duplicate-delivery")

    assert pipeline.start([message, duplicate]) == {"batchItemFailures": []}
    execution = pipeline.wait(ref.file_id)
    assert pipeline.start([message]) == {"batchItemFailures": []}  # a late redelivery

    assert execution["status"] == "SUCCEEDED"
    runs = pipeline.sfn.list_executions(stateMachineArn=pipeline.state_machine)["executions"]
    assert [run["name"] for run in runs] == [ref.file_id]
    assert len(pipeline.keys(pipeline.clean, f"files/{ref.owner_id}/{ref.file_id}/thumb-")) == 2
    assert len(pipeline.sent_emails()) == 1
    assert pipeline.record(ref)["status"] == "READY"


def test_a_replay_of_a_finished_file_changes_nothing(pipeline: Pipeline) -> None:
    ref, first = pipeline.process(images.jpeg((300, 200)))
    before = pipeline.record(ref)

    replay = pipeline.sfn.start_execution(
        stateMachineArn=pipeline.state_machine, name=f"{ref.file_id}-replay", input=first["input"]
    )
    execution = pipeline.wait(f"{ref.file_id}-replay")

    assert replay["executionArn"] == execution["executionArn"]
    assert execution["status"] == "SUCCEEDED"
    assert pipeline.record(ref) == before
    assert pipeline.router.calls["ValidateFunction"] == 1
    assert len(pipeline.sent_emails()) == 1


def _peak_rss_reset() -> None:
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # resets VmHWM, the peak resident set size


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def test_png_decompression_bomb_is_rejected_with_bounded_memory(pipeline: Pipeline) -> None:
    bomb = images.png_bomb(20_000, 20_000)
    baseline = _rss_mb()
    _peak_rss_reset()

    ref, execution = pipeline.process(bomb, name="bomb.png", declared_type="image/png")

    growth = _peak_rss_mb() - baseline
    assert execution["status"] == "SUCCEEDED"
    record = pipeline.record(ref)
    assert record["status"] == "REJECTED"
    assert _error_code(record) == "IMAGE_TOO_LARGE"
    assert growth < 200, f"peak memory grew by {growth:.0f} MB"


def test_transient_lambda_errors_are_retried(pipeline: Pipeline) -> None:
    pipeline.router.service_error("ValidateFunction", 429, "TooManyRequestsException", times=2)
    ref, execution = pipeline.process(images.jpeg((200, 200)))

    assert execution["status"] == "SUCCEEDED"
    assert pipeline.router.calls["ValidateFunction"] == 3
    assert pipeline.record(ref)["status"] == "READY"


@pytest.mark.parametrize("scanner", ["ClamAV"], indirect=True)
def test_an_unknown_scan_verdict_fails_closed(pipeline: Pipeline) -> None:
    verdict = {"verdict": "ERROR", "signature": None, "engine": "ClamAV", "sha256": None}
    pipeline.router.replace(
        "ScanFunction", lambda spec, event: InvokeResult(json.dumps(verdict).encode(), None)
    )
    ref, execution = pipeline.process(images.jpeg((200, 200)))

    assert execution["status"] == "FAILED"
    assert execution["error"] == "ScanIncomplete"
    assert pipeline.record(ref)["status"] == "FAILED"
    assert pipeline.keys(pipeline.clean) == []


def _crash_when(outcome: str | None = None) -> Any:
    def replacement(spec: Any, event: dict[str, Any]) -> InvokeResult | None:
        if outcome is None or event.get("outcome") == outcome:
            return crash()
        return None

    return replacement


# Every Task state that catches States.ALL into "Record failure", and where the original is then.
CATCHING_STATES = [
    ("Mark processing", "RecordFunction", "PROCESSING", "jpeg", "ingest"),
    ("Validate file", "ValidateFunction", None, "jpeg", "ingest"),
    ("Scan for malware", "ScanFunction", None, "jpeg", "ingest"),
    ("Await GuardDuty verdict", "ScanVerdictFunction", None, "jpeg", "ingest"),
    ("Make thumbnails", "ThumbnailsFunction", None, "jpeg", "ingest"),
    ("Extract metadata", "MetadataFunction", None, "jpeg", "ingest"),
    ("Promote original", "PromoteFunction", None, "jpeg", "ingest"),
    ("Record ready", "RecordFunction", "READY", "jpeg", "ingest and files"),
    ("Record rejection", "RecordFunction", "REJECTED", "exe", "ingest"),
    ("Quarantine file", "QuarantineFunction", None, "eicar", "ingest"),
    ("Record quarantine", "RecordFunction", "QUARANTINED", "eicar", "quarantine"),
]
# Each state with each Scanner whose stack has it.
CATCHING_CASES = [
    (scanner, *case)
    for case in CATCHING_STATES
    for scanner, scan_state in (("ClamAV", "Scan for malware"), ("GuardDuty", "Await GuardDuty verdict"))
    if case[0] not in {"Scan for malware", "Await GuardDuty verdict"} - {scan_state}
]


@pytest.mark.parametrize(
    ("scanner", "state", "function", "outcome", "upload", "original"),
    CATCHING_CASES,
    ids=[f"{case[1]}-{case[0]}" for case in CATCHING_CASES],
    indirect=["scanner"],
)
def test_an_unexpected_error_in_a_step_records_failed_and_fails_the_run(
    pipeline: Pipeline, state: str, function: str, outcome: str | None, upload: str, original: str
) -> None:
    data = {"jpeg": images.jpeg((100, 100)), "exe": images.exe(), "eicar": eicar_bytes()}[upload]
    pipeline.router.replace(function, _crash_when(outcome))
    ref, execution = pipeline.process(data)

    assert execution["status"] == "FAILED"
    assert execution["error"] == "RuntimeError"
    record = pipeline.record(ref)
    assert record["status"] == "FAILED"
    assert record["error"] == {"code": "RuntimeError", "message": "injected crash"}
    # Nothing is lost: the original is where the failed step left it, and never served (not READY).
    assert (pipeline.ingest_versions(ref) == [ref.version]) == ("ingest" in original)
    promoted = pipeline.keys(pipeline.clean, f"files/{ref.owner_id}/{ref.file_id}/original")
    assert bool(promoted) == ("files" in original)
    assert bool(pipeline.keys(pipeline.quarantine)) == (original == "quarantine")


def test_when_recording_the_failure_fails_the_run_still_fails(pipeline: Pipeline) -> None:
    pipeline.router.replace("PromoteFunction", _crash_when())
    pipeline.router.replace("RecordFunction", _crash_when("FAILED"))
    ref, execution = pipeline.process(images.jpeg((100, 100)))

    assert execution["status"] == "FAILED"
    assert execution["error"] == "RuntimeError"
    assert pipeline.record(ref)["status"] == "PROCESSING"
    assert pipeline.ingest_versions(ref) == [ref.version]


def _delete_as_the_owner_does(pipeline: Pipeline, ref: FileRef) -> None:
    """What DELETE /files/{id} does: the upload, the served copies, then the record."""
    pipeline.s3.delete_object(Bucket=pipeline.ingest, Key=ref.key)
    for key in pipeline.keys(pipeline.clean, clean_prefix(ref.owner_id, ref.file_id)):
        pipeline.s3.delete_object(Bucket=pipeline.clean, Key=key)
    pipeline.records.delete(ref.owner_id, ref.file_id)


def test_a_file_deleted_while_it_is_processed_leaves_nothing_behind_and_the_run_ends_quietly(
    pipeline: Pipeline,
) -> None:
    def delete_then_promote(spec: Any, event: dict[str, Any]) -> InvokeResult:
        # The owner deletes after the thumbnails are stored and before the original is promoted.
        _delete_as_the_owner_does(pipeline, FileRef.from_state(event))
        return invoke_in_process(spec, event)

    pipeline.router.replace("PromoteFunction", delete_then_promote)
    ref, execution = pipeline.process(images.jpeg((400, 300)))

    assert execution["status"] == "SUCCEEDED"  # the owner's choice, not a failure for operators to replay
    assert pipeline.records.get(ref.owner_id, ref.file_id) is None
    assert pipeline.keys(pipeline.clean, clean_prefix(ref.owner_id, ref.file_id)) == []  # no orphaned copy
    assert pipeline.router.calls["PromoteFunction"] == 1
    assert pipeline.router.calls["NotifyFunction"] == 0
    assert pipeline.sent_emails() == []
    pipeline.publish_status_change(execution)
    assert pipeline.dlq_messages() == []


def test_a_file_deleted_before_its_run_starts_is_not_processed(pipeline: Pipeline) -> None:
    ref = pipeline.upload(images.jpeg((400, 300)))
    _delete_as_the_owner_does(pipeline, ref)
    messages = pipeline.queued_start_messages()
    assert pipeline.start(messages) == {"batchItemFailures": []}
    execution = pipeline.wait(ref.file_id)

    assert execution["status"] == "SUCCEEDED"
    assert pipeline.router.calls["ValidateFunction"] == 0
    assert pipeline.records.get(ref.owner_id, ref.file_id) is None
    assert pipeline.sent_emails() == []
