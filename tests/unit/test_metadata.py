"""The metadata step: image size and an EXIF subset without GPS from headers, PDF page counts."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from moto import mock_aws

import common.aws
import common.settings
from filepipe.local.services.awslambda.invoke import LambdaContext
from metadata import handler
from metadata.pdf import PagesCountScanner, count_pages
from tests import images
from tests.stack import ingest_bucket, put_upload, record_s3_requests, reset_function_caches, step_event

INGEST = "filepipe-ingest-test"
OWNER = "5f0c8a52-2d7e-4f7b-9a39-0c1d2e3f4a5b"
MB = 1024 * 1024

CONTEXT = LambdaContext(
    function_name="filepipe-metadata",
    invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:filepipe-metadata",
    memory_limit_in_mb=512,
    timeout_seconds=300,
)


@dataclass
class Metadata:
    s3: Any

    def extract(self, data: bytes, content_type: str) -> dict[str, Any]:
        validation = {"contentType": content_type, "size": len(data), "kind": "any"}
        event = step_event(put_upload(self.s3, INGEST, OWNER, data), validation=validation)
        result: dict[str, Any] = handler.lambda_handler(event, CONTEXT)
        return result


@pytest.fixture
def metadata(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Metadata]:
    with mock_aws():
        s3 = ingest_bucket(INGEST)
        monkeypatch.setenv("INGEST_BUCKET", INGEST)
        reset_function_caches()
        yield Metadata(s3)
    reset_function_caches()


def test_a_file_without_known_metadata_gives_none(metadata: Metadata) -> None:
    data = random.Random(11).randbytes(3 * MB + 12345)
    assert metadata.extract(data, "application/zip") == {}


def test_an_image_gets_its_size_and_an_exif_subset_without_gps(metadata: Metadata) -> None:
    data = images.jpeg_with_exif((640, 480), orientation=1, with_gps=True)
    result = metadata.extract(data, "image/jpeg")
    assert (result["width"], result["height"]) == (640, 480)
    assert result["exif"] == {
        "Make": "Canon",
        "Model": "EOS R5",
        "Orientation": 1,
        "DateTimeOriginal": "2024:05:01 10:30:00",
        "ExposureTime": 0.008,
        "FNumber": 2.8,
        "ISOSpeedRatings": 400,
        "FocalLength": 50.0,
        "LensModel": "RF50mm F1.8 STM",
    }
    flattened = repr(result)
    for private in ("GPS", "48.0", "Jane Doe", "0123456789", "firmware"):
        assert private not in flattened


def test_dimensions_are_given_as_displayed(metadata: Metadata) -> None:
    result = metadata.extract(images.jpeg_with_exif((640, 480), orientation=6), "image/jpeg")
    assert (result["width"], result["height"]) == (480, 640)
    assert result["exif"]["Orientation"] == 6


def test_a_heic_photo_gets_its_displayed_size_and_exif_subset(metadata: Metadata) -> None:
    # Stored 640x480 with a quarter-turn container rotation: shown, and described, as 480x640.
    result = metadata.extract(images.heic_with_exif((640, 480), orientation=6, with_gps=True), "image/heic")
    assert (result["width"], result["height"]) == (480, 640)
    assert result["exif"]["Make"] == "Canon"
    assert result["exif"]["LensModel"] == "RF50mm F1.8 STM"
    assert "GPS" not in repr(result)


def test_an_image_without_exif_has_no_exif_key(metadata: Metadata) -> None:
    result = metadata.extract(images.png((300, 200)), "image/png")
    assert (result["width"], result["height"]) == (300, 200)
    assert "exif" not in result


def test_a_header_larger_than_the_first_read_is_still_found(metadata: Metadata) -> None:
    # 300 KB of random ICC-like data before the frame header pushes it past the 256 KB header read.
    padding = random.Random(5).randbytes(300 * 1024)
    data = images.jpeg((320, 240), icc_profile=padding)
    result = metadata.extract(data, "image/jpeg")
    assert (result["width"], result["height"]) == (320, 240)


@pytest.mark.parametrize(
    ("make", "pages"),
    [
        (lambda: images.pdf(1), 1),
        (lambda: images.pdf(7), 7),
        (lambda: images.pdf_with_object_streams(5), 5),
        (lambda: images.pdf_incremental_update(3), 4),
    ],
    ids=["one page", "classic xref", "object streams", "incremental update"],
)
def test_pdf_page_count(metadata: Metadata, make: Any, pages: int) -> None:
    data = make()
    result = metadata.extract(data, "application/pdf")
    assert result == {"pages": pages}


def test_a_pdf_with_broken_cross_references_falls_back_to_the_page_tree_scan(metadata: Metadata) -> None:
    data = images.pdf(6)
    start = data.rindex(b"startxref\n") + len(b"startxref\n")
    end = data.index(b"\n", start)
    broken = data[:start] + b"9" + data[end:]  # points into the header, not at the xref table
    assert count_pages(lambda s, n: broken[s : s + n], len(broken)) is None
    assert metadata.extract(broken, "application/pdf")["pages"] == 6


def test_pdf_page_count_reads_only_a_little_of_a_large_file() -> None:
    data = images.pdf(12, filler=random.Random(9).randbytes(4 * MB))
    bytes_read = 0

    def read(start: int, length: int) -> bytes:
        nonlocal bytes_read
        chunk = data[start : start + length]
        bytes_read += len(chunk)
        return chunk

    assert count_pages(read, len(data)) == 12
    assert bytes_read < 200 * 1024 < len(data)


def test_the_page_tree_scanner_ignores_outline_counts_and_survives_chunk_boundaries() -> None:
    data = images.pdf(9)  # its /Outlines object says /Count 99
    for chunk_size in (7, 64, len(data)):
        scanner = PagesCountScanner()
        for start in range(0, len(data), chunk_size):
            scanner.feed(data[start : start + chunk_size])
        assert scanner.largest == 9


def test_garbage_is_not_a_page_count() -> None:
    data = b"%PDF-1.7\n" + random.Random(1).randbytes(5000) + b"\nstartxref\n12\n%%EOF\n"
    assert count_pages(lambda s, n: data[s : s + n], len(data)) is None


def test_an_image_header_is_read_with_one_ranged_get(metadata: Metadata) -> None:
    data = images.jpeg_with_exif((640, 480), orientation=6) + random.Random(2).randbytes(2 * MB)
    calls = record_s3_requests(common.aws.client("s3"))
    result = metadata.extract(data, "image/jpeg")
    assert (result["width"], result["height"], result["exif"]["Orientation"]) == (480, 640, 6)
    assert calls == ["GetObject (range)"]
