"""The validate step: size from S3, type from the first bytes, image headers under a pixel limit."""

from __future__ import annotations

import io
import json
import os
import random
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

import common.aws
import common.filetypes
import common.settings
from common.errors import FileRejected
from common.model import FileRef, ingest_key, new_file_id
from filepipe.local.services.awslambda.invoke import LambdaContext, invoke_in_process
from filepipe.template import Template
from tests import images
from tests.stack import (
    REGION,
    StackFixture,
    ingest_bucket,
    put_upload,
    record_s3_requests,
    reset_function_caches,
    step_event,
)
from thumbnails.render import render_thumbnails
from validate import handler
from validate.sniff import sniff

INGEST = "filepipe-ingest-test"
FILES = "filepipe-files-test"
OWNER = "5f0c8a52-2d7e-4f7b-9a39-0c1d2e3f4a5b"
MB = 1024 * 1024

CONTEXT = LambdaContext(
    function_name="filepipe-validate",
    invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:filepipe-validate",
    memory_limit_in_mb=1024,
    timeout_seconds=60,
)


@dataclass
class Uploads:
    s3: Any
    monkeypatch: pytest.MonkeyPatch

    def put(self, data: bytes, declared_type: str = "application/octet-stream") -> dict[str, Any]:
        """Upload ``data`` as the browser would (declared type included) and build the step's event."""
        return step_event(put_upload(self.s3, INGEST, OWNER, data, declared_type))

    def setenv(self, name: str, value: str) -> None:
        self.monkeypatch.setenv(name, value)
        reset_function_caches()


@pytest.fixture
def uploads(aws_env: None, template: Template, monkeypatch: pytest.MonkeyPatch) -> Iterator[Uploads]:
    table = template.resources["FilesTable"]["Properties"]
    with mock_aws():
        s3 = ingest_bucket(INGEST)
        # The owner's quota is checked in a table with the files table's keys (template.yaml's FilesTable).
        boto3.client("dynamodb", region_name=REGION).create_table(
            TableName=FILES,
            KeySchema=table["KeySchema"],
            AttributeDefinitions=[
                a for a in table["AttributeDefinitions"] if a["AttributeName"] in ("pk", "sk")
            ],
            BillingMode=table["BillingMode"],
        )
        monkeypatch.setenv("FILES_TABLE", FILES)
        monkeypatch.setenv("USER_STORAGE_QUOTA_BYTES", str(5 * 1024 * MB))
        monkeypatch.setenv("INGEST_BUCKET", INGEST)
        monkeypatch.setenv("MAX_FILE_BYTES", str(50 * MB))
        monkeypatch.setenv("ALLOWED_TYPES", ",".join(sorted(common.filetypes.KNOWN_TYPES)))
        monkeypatch.setenv("MAX_IMAGE_PIXELS", "50000000")
        reset_function_caches()
        yield Uploads(s3, monkeypatch)
    reset_function_caches()


def validate(event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = handler.lambda_handler(event, CONTEXT)
    return result


def rejection(event: dict[str, Any]) -> FileRejected:
    with pytest.raises(FileRejected) as caught:
        validate(event)
    return caught.value


ALLOWED_SAMPLES: list[tuple[str, Callable[[], bytes], str, str]] = [
    ("jpeg", images.jpeg, "image/jpeg", "image"),
    ("png", images.png, "image/png", "image"),
    ("gif", images.animated_gif, "image/gif", "image"),
    ("webp", images.webp, "image/webp", "image"),
    ("heic", images.heic, "image/heic", "image"),
    ("heic 10-bit", images.heic_10_bit, "image/heic", "image"),
    ("heif with an hevc brand", lambda: images.ftyp(b"mif1", b"mif1", b"heix"), "image/heic", "image"),
    ("pdf", lambda: images.pdf(2), "application/pdf", "document"),
    ("text", images.text, "text/plain", "text"),
    ("csv", images.csv_text, "text/csv", "text"),
    ("semicolon csv", lambda: images.csv_text(delimiter=";"), "text/csv", "text"),
    ("zip", images.plain_zip, "application/zip", "archive"),
    (
        "docx",
        lambda: images.office_document("docx"),
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "document",
    ),
    (
        "xlsx",
        lambda: images.office_document("xlsx"),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "document",
    ),
    (
        "pptx",
        lambda: images.office_document("pptx"),
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "document",
    ),
    ("mp4", images.mp4, "video/mp4", "video"),
    ("mp3", images.mp3, "audio/mpeg", "audio"),
]


@pytest.mark.parametrize(
    ("make", "content_type", "kind"), [s[1:] for s in ALLOWED_SAMPLES], ids=[s[0] for s in ALLOWED_SAMPLES]
)
def test_every_allowed_type_is_detected_from_its_bytes(
    uploads: Uploads, make: Callable[[], bytes], content_type: str, kind: str
) -> None:
    data = make()
    # The declared type is deliberately wrong: only the bytes count.
    result = validate(uploads.put(data, declared_type="application/x-unknown"))
    assert result == {"contentType": content_type, "size": len(data), "kind": kind}


def test_the_declared_type_is_ignored(uploads: Uploads) -> None:
    event = uploads.put(images.png(), declared_type="application/pdf")
    assert validate(event)["contentType"] == "image/png"


def test_an_executable_renamed_to_jpg_and_declared_as_jpeg_is_rejected(uploads: Uploads) -> None:
    error = rejection(uploads.put(images.exe(), declared_type="image/jpeg"))
    assert error.code == "UNSUPPORTED_TYPE"
    assert "application/x-msdownload" in error.message


def test_pixel_data_is_left_to_the_thumbnail_decode(uploads: Uploads) -> None:
    """A JPEG header followed by a script is a JPEG to every sniffer: its decode, later, rejects it."""
    data = images.jpeg_header_with_php()
    assert data.startswith(b"\xff\xd8\xff")
    assert validate(uploads.put(data, declared_type="image/jpeg"))["contentType"] == "image/jpeg"


def test_the_rejection_reason_travels_as_json_in_the_error_message(uploads: Uploads) -> None:
    error = rejection(uploads.put(images.exe()))
    assert json.loads(str(error)) == {"code": "UNSUPPORTED_TYPE", "message": error.message}


def test_an_empty_file_is_rejected(uploads: Uploads) -> None:
    assert rejection(uploads.put(b"")).code == "EMPTY_FILE"


def test_size_comes_from_s3_and_the_limit_is_inclusive(uploads: Uploads) -> None:
    uploads.setenv("MAX_FILE_BYTES", "1000")
    line = b"0123456789abcdefghijklmnopqrstuvwxyz\n"
    exactly = (line * 30)[:999] + b"\n"
    assert validate(uploads.put(exactly))["size"] == 1000
    error = rejection(uploads.put(exactly + b"x"))
    assert error.code == "TOO_LARGE"
    assert "1001" in error.message


def test_the_object_version_in_the_event_is_the_one_validated(uploads: Uploads) -> None:
    event = uploads.put(images.png())
    # A later upload to the same key must not change what this execution validates.
    uploads.s3.put_object(Bucket=INGEST, Key=event["file"]["key"], Body=images.exe())
    assert validate(event)["contentType"] == "image/png"


def test_an_avif_is_not_taken_for_a_heic(uploads: Uploads) -> None:
    error = rejection(uploads.put(images.ftyp(b"avif", b"avif", b"mif1", b"miaf")))
    assert error.code == "UNSUPPORTED_TYPE"
    assert "image/avif" in error.message


def test_types_outside_the_allow_list_are_rejected(uploads: Uploads) -> None:
    uploads.setenv("ALLOWED_TYPES", "image/png,image/jpeg")
    assert validate(uploads.put(images.png()))["contentType"] == "image/png"
    error = rejection(uploads.put(images.pdf(1)))
    assert error.code == "UNSUPPORTED_TYPE"
    assert "application/pdf" in error.message


def test_a_more_specific_type_falls_back_to_its_general_allowed_type(uploads: Uploads) -> None:
    uploads.setenv("ALLOWED_TYPES", "text/plain,application/zip")
    assert validate(uploads.put(images.csv_text()))["contentType"] == "text/plain"
    assert validate(uploads.put(images.office_document("docx")))["contentType"] == "application/zip"


@pytest.mark.parametrize("make", [images.html, images.svg], ids=["html", "svg"])
def test_markup_is_not_accepted_as_text(uploads: Uploads, make: Callable[[], bytes]) -> None:
    assert rejection(uploads.put(make(), declared_type="text/plain")).code == "UNSUPPORTED_TYPE"


def test_text_starting_like_a_binary_signature_stays_text(uploads: Uploads) -> None:
    # "BM" is the bitmap signature and "MZ" the executable one; real ones have binary bytes right after.
    for data in (b"BMW,Audi\nX5,A6\nX3,A4\n", b"MZ Motors annual report\nrevenue grew\n"):
        assert validate(uploads.put(data))["kind"] == "text"


def test_binary_data_is_not_text(uploads: Uploads) -> None:
    data = bytes(random.Random(7).randrange(256) for _ in range(4096))
    assert rejection(uploads.put(data)).code == "UNSUPPORTED_TYPE"


def test_a_truncated_zip_is_rejected(uploads: Uploads) -> None:
    data = images.plain_zip()
    assert rejection(uploads.put(data[: len(data) - 30])).code == "CORRUPT_ARCHIVE"


def test_office_documents_are_told_from_zips_by_the_central_directory_alone() -> None:
    """The OOXML parts come after 1.5 MB of media; only the end of the archive is read to find them."""
    rng = random.Random(3)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for n in range(3):
            archive.writestr(f"ppt/media/image{n}.bin", rng.randbytes(512 * 1024))
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("ppt/presentation.xml", "<presentation/>")
    data = buffer.getvalue()
    bytes_read = 0

    def read_range(start: int, length: int) -> bytes:
        nonlocal bytes_read
        chunk = data[start : start + length]
        bytes_read += len(chunk)
        return chunk

    detection = sniff(data[:8192], len(data), read_range)
    assert detection.candidates[0].endswith("presentationml.presentation")
    assert bytes_read < 100 * 1024


def test_pixel_limit_is_configurable(uploads: Uploads) -> None:
    uploads.setenv("MAX_IMAGE_PIXELS", "5000")
    assert validate(uploads.put(images.png((70, 70))))["kind"] == "image"  # 4900 pixels
    error = rejection(uploads.put(images.png((100, 100))))
    assert error.code == "IMAGE_TOO_LARGE"


def test_a_heic_over_the_pixel_limit_is_refused(uploads: Uploads) -> None:
    uploads.setenv("MAX_IMAGE_PIXELS", "5000")
    assert validate(uploads.put(images.heic_with_exif((70, 70))))["contentType"] == "image/heic"
    assert rejection(uploads.put(images.heic_with_exif((100, 100)))).code == "IMAGE_TOO_LARGE"


def test_an_image_just_over_the_limit_is_refused_not_merely_warned_about(uploads: Uploads) -> None:
    # Pillow only warns between 1x and 2x its limit; the step turns that warning into a rejection.
    uploads.setenv("MAX_IMAGE_PIXELS", "10000")
    assert rejection(uploads.put(images.png_bomb(120, 100))).code == "IMAGE_TOO_LARGE"


def _resident_peak_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/self/status")


def _resident_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc to reset peak RSS")
def test_a_decompression_bomb_is_rejected_in_little_memory(uploads: Uploads) -> None:
    bomb = images.png_bomb(20_000, 20_000)  # 400 megapixels: 400 MB as greyscale, 1.6 GB as RGBA
    assert len(bomb) < MB
    event = uploads.put(bomb, declared_type="image/png")

    tracemalloc.start()
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        baseline = _resident_bytes()
        error = rejection(event)
        # The thumbnail decode too, which enforces the limit when a header is out of the first bytes' reach.
        with pytest.raises(FileRejected) as direct:
            render_thumbnails(io.BytesIO(bomb), (256, 1024), 50_000_000)
        rss_growth = _resident_peak_bytes() - baseline
        _, traced_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert error.code == direct.value.code == "IMAGE_TOO_LARGE"
    assert rss_growth < 200 * MB
    assert traced_peak < 200 * MB


def test_handler_refuses_objects_outside_the_ingest_bucket(uploads: Uploads) -> None:
    event = uploads.put(images.png())
    event["file"]["bucket"] = "someone-elses-bucket"
    with pytest.raises(ValueError, match="reads uploads"):
        validate(event)


def test_the_steps_run_with_the_environment_the_template_gives_them(stack: StackFixture) -> None:
    """Validate, then thumbnails and metadata, configured only by template.yaml's environment."""
    stack.use_functions("ValidateFunction", "ThumbnailsFunction", "MetadataFunction")
    ingest = stack.physical("IngestBucket")
    s3 = stack.client("s3")
    file_id = new_file_id()
    key = ingest_key(OWNER, file_id)
    data = images.jpeg_with_exif((1600, 1200), orientation=6)
    version = s3.put_object(Bucket=ingest, Key=key, Body=data, ContentType="image/jpeg")["VersionId"]
    event: dict[str, Any] = {
        "file": FileRef(ingest, key, version, OWNER, file_id).to_state(),
        "executionName": file_id,
    }

    validated = invoke_in_process(stack.function("ValidateFunction"), event)
    assert validated.function_error is None, validated.payload
    event["validation"] = json.loads(validated.payload)
    assert event["validation"] == {"contentType": "image/jpeg", "size": len(data), "kind": "image"}

    thumbnails = invoke_in_process(stack.function("ThumbnailsFunction"), event)
    assert thumbnails.function_error is None, thumbnails.payload
    sizes = {t["size"]: (t["width"], t["height"]) for t in json.loads(thumbnails.payload)["thumbnails"]}
    assert sizes == {256: (192, 256), 1024: (768, 1024)}

    metadata = invoke_in_process(stack.function("MetadataFunction"), event)
    assert metadata.function_error is None, metadata.payload
    assert json.loads(metadata.payload)["width"] == 1200

    exe = s3.put_object(Bucket=ingest, Key=key, Body=images.exe())["VersionId"]
    rejected = invoke_in_process(
        stack.function("ValidateFunction"), {**event, "file": {**event["file"], "version": exe}}
    )
    assert rejected.function_error == "Unhandled"
    body = json.loads(rejected.payload)
    assert body["errorType"] == "FileRejected"
    assert json.loads(body["errorMessage"])["code"] == "UNSUPPORTED_TYPE"


def test_an_image_is_sized_typed_and_checked_from_one_ranged_read(uploads: Uploads) -> None:
    event = uploads.put(images.jpeg((1200, 900)))
    calls = record_s3_requests(common.aws.client("s3"))
    assert validate(event) == {
        "contentType": "image/jpeg",
        "size": len(images.jpeg((1200, 900))),
        "kind": "image",
    }
    assert calls == ["GetObject (range)"]


def test_a_zip_is_typed_from_its_first_bytes_and_its_central_directory(uploads: Uploads) -> None:
    event = uploads.put(images.office_document("docx"))
    calls = record_s3_requests(common.aws.client("s3"))
    assert validate(event)["kind"] == "document"
    assert set(calls) == {"GetObject (range)"}
