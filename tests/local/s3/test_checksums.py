"""Part checksums of multipart uploads, as S3 checks them: a part whose bytes differ from its signed SHA-256
is refused, parts are listed and completed with their checksums, and the upload resumes over HTTP."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator, Sequence
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from filepipe.local import moto_patches
from filepipe.local.client import BrowserClient
from filepipe.local.services.s3 import checksums
from filepipe.local.services.s3 import patches as s3_patches
from filepipe.local.services.s3.post import S3PostError
from filepipe.runtime_state import DEMO_EMAIL, DEMO_PASSWORD
from tests.local.conftest import DEMO_EMAIL_ARGS, LocalProcess

pytestmark = pytest.mark.local

MIB = 1024 * 1024
BUCKET = "checksum-parity"
PART = b"a" * (5 * MIB)
TAIL = b"the last part"
SIGV4 = Config(signature_version="s3v4", s3={"addressing_style": "path"})


def sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


@pytest.fixture
def s3(aws_env: None) -> Iterator[Any]:
    """moto in process, part checksums checked as `filepipe local` installs it (removed after the test)."""
    uninstall = moto_patches.install(s3_patches.verify_part_checksums)
    try:
        with mock_aws():
            client = boto3.client("s3", region_name="us-east-1", config=SIGV4)
            client.create_bucket(Bucket=BUCKET)
            yield client
    finally:
        uninstall()


def presigned_put(
    s3: Any, upload_id: str, number: int, body: bytes, checksum: str | None
) -> requests.Response:
    """The browser's PUT: to a URL that signs the checksum, with the checksum header when it has one."""
    params = {"Bucket": BUCKET, "Key": "film.mp4", "UploadId": upload_id, "PartNumber": number}
    if checksum is not None:
        params["ChecksumSHA256"] = checksum
    url = s3.generate_presigned_url("upload_part", Params=params, ExpiresIn=600)
    headers = {"x-amz-checksum-sha256": checksum} if checksum is not None else {}
    return requests.put(url, data=body, headers=headers, timeout=10)


def error_of(response: requests.Response) -> tuple[int, str, str]:
    text = response.text
    code = text.split("<Code>", 1)[1].split("</Code>", 1)[0]
    message = text.split("<Message>", 1)[1].split("</Message>", 1)[0]
    return response.status_code, code, message


def test_a_part_whose_bytes_differ_from_its_checksum_is_refused_and_not_stored(s3: Any) -> None:
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="film.mp4", ChecksumAlgorithm="SHA256")["UploadId"]

    wrong = presigned_put(s3, upload, 1, b"A" + PART[1:], sha256(PART))
    missing = presigned_put(s3, upload, 1, PART, None)
    malformed = presigned_put(s3, upload, 1, PART, "bm90IGEgZGlnZXN0")
    crc = s3.generate_presigned_url(
        "upload_part",
        Params={"Bucket": BUCKET, "Key": "film.mp4", "UploadId": upload, "PartNumber": 1},
        ExpiresIn=600,
    )
    other_algorithm = requests.put(crc, data=PART, headers={"x-amz-checksum-crc32": "AAAAAA=="}, timeout=10)
    two = requests.put(
        crc,
        data=PART,
        headers={"x-amz-checksum-crc32": "AAAAAA==", "x-amz-checksum-sha256": sha256(PART)},
        timeout=10,
    )

    assert error_of(wrong) == (
        400,
        "BadDigest",
        "The SHA256 you specified did not match the calculated checksum.",
    )
    assert error_of(missing) == (
        400,
        "InvalidRequest",
        "Checksum Type mismatch occurred, expected checksum Type: sha256, actual checksum Type: null",
    )
    assert error_of(malformed) == (
        400,
        "InvalidRequest",
        "Value for x-amz-checksum-sha256 header is invalid.",
    )
    assert error_of(other_algorithm)[2].endswith(
        "expected checksum Type: sha256, actual checksum Type: crc32"
    )
    assert error_of(two) == (
        400,
        "InvalidRequest",
        "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
    )
    assert s3.list_parts(Bucket=BUCKET, Key="film.mp4", UploadId=upload).get("Parts", []) == []


def test_parts_are_listed_with_their_checksums_and_completed_only_with_them(s3: Any) -> None:
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="film.mp4", ChecksumAlgorithm="SHA256")["UploadId"]
    first = presigned_put(s3, upload, 1, PART, sha256(PART))
    second = presigned_put(s3, upload, 2, TAIL, sha256(TAIL))
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.headers["x-amz-checksum-sha256"] == sha256(PART)

    listed = s3.list_parts(Bucket=BUCKET, Key="film.mp4", UploadId=upload, MaxParts=1)
    rest = s3.list_parts(
        Bucket=BUCKET, Key="film.mp4", UploadId=upload, PartNumberMarker=listed["NextPartNumberMarker"]
    )
    parts = listed["Parts"] + rest["Parts"]
    assert [(p["PartNumber"], p["ChecksumSHA256"]) for p in parts] == [(1, sha256(PART)), (2, sha256(TAIL))]
    assert (listed["ChecksumAlgorithm"], listed["ChecksumType"]) == ("SHA256", "COMPOSITE")

    def complete(checksums: Sequence[str | None]) -> Any:
        named = [
            {"PartNumber": p["PartNumber"], "ETag": p["ETag"], **({"ChecksumSHA256": c} if c else {})}
            for p, c in zip(parts, checksums, strict=True)
        ]
        return s3.complete_multipart_upload(
            Bucket=BUCKET, Key="film.mp4", UploadId=upload, MultipartUpload={"Parts": named}
        )

    for checksums_sent, code, message in (
        (
            [sha256(PART), None],
            "InvalidRequest",
            "The upload was created using a sha256 checksum. The complete request must include the checksum "
            "for each part. It was missing for part 2 in the request.",
        ),
        (
            [sha256(PART), sha256(PART)],
            "InvalidPart",
            "One or more of the specified parts could not be found.",
        ),
    ):
        with pytest.raises(ClientError) as refused:
            complete(checksums_sent)
        error = refused.value.response["Error"]
        assert (refused.value.response["ResponseMetadata"]["HTTPStatusCode"], error["Code"]) == (400, code)
        assert error["Message"].startswith(message)

    complete([sha256(PART), sha256(TAIL)])
    assert s3.get_object(Bucket=BUCKET, Key="film.mp4")["Body"].read() == PART + TAIL


def test_an_upload_without_a_checksum_algorithm_takes_parts_as_before(s3: Any) -> None:
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="plain")["UploadId"]
    sdk_part = s3.upload_part(Bucket=BUCKET, Key="plain", UploadId=upload, PartNumber=1, Body=TAIL)

    with pytest.raises(ClientError) as refused:
        s3.complete_multipart_upload(
            Bucket=BUCKET,
            Key="plain",
            UploadId=upload,
            MultipartUpload={
                "Parts": [{"PartNumber": 1, "ETag": sdk_part["ETag"], "ChecksumSHA256": sha256(TAIL)}]
            },
        )
    s3.complete_multipart_upload(
        Bucket=BUCKET,
        Key="plain",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": sdk_part["ETag"]}]},
    )

    assert refused.value.response["Error"]["Code"] == "InvalidPart"
    assert s3.get_object(Bucket=BUCKET, Key="plain")["Body"].read() == TAIL


def test_an_sdk_checksum_in_the_trailer_of_a_chunked_body_is_checked_and_kept(s3: Any) -> None:
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="sdk", ChecksumAlgorithm="SHA256")["UploadId"]

    part = s3.upload_part(
        Bucket=BUCKET, Key="sdk", UploadId=upload, PartNumber=1, Body=TAIL, ChecksumAlgorithm="SHA256"
    )

    assert part["ChecksumSHA256"] == sha256(TAIL)
    listed = s3.list_parts(Bucket=BUCKET, Key="sdk", UploadId=upload)["Parts"]
    assert [p["ChecksumSHA256"] for p in listed] == [sha256(TAIL)]


def test_without_the_patch_moto_stores_a_part_whatever_its_checksum(aws_env: None) -> None:
    """Why the patch exists: moto 5.2 neither checks a part's checksum nor lists or asks for it."""
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1", config=SIGV4)
        s3.create_bucket(Bucket=BUCKET)
        upload = s3.create_multipart_upload(Bucket=BUCKET, Key="film.mp4", ChecksumAlgorithm="SHA256")[
            "UploadId"
        ]

        wrong = presigned_put(s3, upload, 1, b"A" + PART[1:], sha256(PART))

        assert wrong.status_code == 200
        assert (
            "ChecksumSHA256" not in s3.list_parts(Bucket=BUCKET, Key="film.mp4", UploadId=upload)["Parts"][0]
        )


def test_the_rules_name_s3s_codes_for_each_refusal() -> None:
    good = sha256(TAIL)
    with pytest.raises(S3PostError) as mismatch:
        checksums.check_part("SHA256", {"x-amz-checksum-sha256": good}, b"other")
    assert (mismatch.value.status, mismatch.value.code) == (400, "BadDigest")
    assert checksums.check_part("SHA256", {"X-Amz-Checksum-SHA256": good}, TAIL) == checksums.PartChecksum(
        "SHA256", good
    )
    assert checksums.check_part(None, {}, TAIL) is None
    with pytest.raises(S3PostError, match="InvalidRequest"):
        checksums.check_part("SHA256", {"x-amz-checksum-sha256": good.rstrip("=")}, TAIL)
    with pytest.raises(S3PostError, match="InvalidPart"):
        checksums.check_completed_part("SHA256", 1, {"ChecksumSHA256": good}, None)
    with pytest.raises(S3PostError, match="InvalidPart"):
        checksums.check_completed_part(None, 1, {"ChecksumSHA256": good}, None)
    checksums.check_completed_part(
        "SHA256", 1, {"ChecksumSHA256": good}, checksums.PartChecksum("SHA256", good)
    )
    assert checksums.completed_parts(b"not xml") == []


# ---------------------------------------------------------------- over HTTP, `filepipe local`


@pytest.fixture(scope="module")
def small_parts_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalProcess]:
    """`filepipe local` whose API plans a multipart upload above 5 MiB, S3's smallest part."""
    running = LocalProcess(
        tmp_path_factory.mktemp("multipart"),
        [*DEMO_EMAIL_ARGS, "--parameter", "SinglePartLimitBytes=5242880"],
    )
    yield running
    running.stop()


def test_an_interrupted_upload_resumes_over_http_and_a_corrupted_part_is_refused(
    small_parts_stack: LocalProcess,
) -> None:
    browser = BrowserClient(small_parts_stack.web_url)
    browser.sign_in(DEMO_EMAIL, DEMO_PASSWORD)
    data = bytes(range(256)) * (17 * MIB // 256) + b"tail"
    plan = browser.call(
        "POST", "/uploads", {"name": "film.mp4", "size": len(data), "contentType": "video/mp4"}, expect=201
    )
    file_id, size = plan["fileId"], plan["partSize"]
    pieces = {n: data[(n - 1) * size : n * size] for n in range(1, plan["partCount"] + 1)}
    assert (size, len(pieces)) == (8 * MIB, 3)

    def sign(numbers: list[int]) -> dict[int, dict[str, Any]]:
        parts = [{"partNumber": n, "checksumSha256": sha256(pieces[n])} for n in numbers]
        signed = browser.call("POST", f"/uploads/{file_id}/parts", {"parts": parts})
        return {part["partNumber"]: part for part in signed["parts"]}

    def put(part: dict[str, Any], body: bytes) -> requests.Response:
        return browser.http.put(part["url"], data=body, headers=part["headers"], timeout=30)

    signed = sign([1, 3])
    assert put(signed[1], pieces[1]).status_code == 200
    corrupted = put(signed[3], pieces[3][:-1] + b"!")
    assert error_of(corrupted) == (
        400,
        "BadDigest",
        "The SHA256 you specified did not match the calculated checksum.",
    )

    # The connection is lost here; later the browser asks what storage holds and sends the rest.
    progress = browser.call("GET", f"/uploads/{file_id}")
    assert [p["partNumber"] for p in progress["parts"]] == [1]
    assert progress["parts"][0]["checksumSha256"] == sha256(pieces[1])
    assert progress["missingParts"] == [2, 3]
    sent = {n: put(part, pieces[n]) for n, part in sign(progress["missingParts"]).items()}
    assert {n: reply.status_code for n, reply in sent.items()} == {2: 200, 3: 200}

    held = [{k: p[k] for k in ("partNumber", "etag", "checksumSha256")} for p in progress["parts"]]
    fresh = [
        {"partNumber": n, "etag": reply.headers["ETag"], "checksumSha256": sha256(pieces[n])}
        for n, reply in sent.items()
    ]
    browser.call(
        "POST", f"/uploads/{file_id}/complete", {"uploadId": plan["uploadId"], "parts": held + fresh}
    )

    final = browser.wait_final(file_id, timeout=60)
    assert final["status"] in {"READY", "REJECTED"}, final  # the bytes are no real video; they arrived whole
    assert final["size"] == len(data)
    again = browser.request("GET", f"/uploads/{file_id}")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "UploadFinished")
