"""S3 adapter for browser uploads into the ingest bucket: presigned POSTs and multipart uploads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from common.aws import error_code
from common.errors import InvalidRequest, NotFound
from common.storage import ObjectStore

# S3 answers InvalidRequest and BadDigest to a completion whose part checksums are missing or wrong.
_BAD_PARTS = frozenset(
    {"InvalidPart", "InvalidPartOrder", "EntityTooSmall", "MalformedXML", "InvalidRequest", "BadDigest"}
)
# Every part of a multipart upload carries its SHA-256, which S3 checks against the bytes it receives.
CHECKSUM_ALGORITHM: Final = "SHA256"


@dataclass(frozen=True)
class StoredPart:
    size: int
    etag: str
    checksum_sha256: str | None


@dataclass(frozen=True)
class CompletedPart:
    number: int
    etag: str
    checksum_sha256: str


def bare_etag(etag: str) -> str:
    """ETags compare without the quotes S3 and browsers put around them."""
    return etag.strip().strip('"')


class IngestStore(ObjectStore):
    """The ingest bucket as browsers see it: every URL it signs pins one server-chosen key."""

    def __init__(self, s3: Any, bucket: str) -> None:
        super().__init__(s3)
        self.bucket = bucket

    def _upload_error(self, error: Exception, key: str) -> Exception:
        code = error_code(error)
        if code == "NoSuchUpload":
            return NotFound(
                "no multipart upload in progress for this file: it was completed, aborted or expired",
                code="UploadNotFound",
            )
        if code in _BAD_PARTS:
            return InvalidRequest(
                "the parts do not match what was uploaded (number, ETag, checksum or size)",
                code="InvalidParts",
            )
        return self._translate(error, self.bucket, key)

    def presign_post(
        self, key: str, content_type: str, max_bytes: int, expires_in: int
    ) -> tuple[str, dict[str, str]]:
        """A POST policy for exactly this key, 1..max_bytes bytes and this Content-Type."""
        response = self._s3.generate_presigned_post(
            Bucket=self.bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]],
            ExpiresIn=expires_in,
        )
        return str(response["url"]), {name: str(value) for name, value in response["fields"].items()}

    def start_multipart(self, key: str, content_type: str) -> str:
        """A multipart upload whose parts S3 stores only with a matching SHA-256 (ChecksumAlgorithm)."""
        try:
            response = self._s3.create_multipart_upload(
                Bucket=self.bucket, Key=key, ContentType=content_type, ChecksumAlgorithm=CHECKSUM_ALGORITHM
            )
        except Exception as error:
            raise self._upload_error(error, key) from error
        return str(response["UploadId"])

    def presign_part(
        self, key: str, upload_id: str, part_number: int, checksum_sha256: str, expires_in: int
    ) -> str:
        """A PUT for one part that signs its x-amz-checksum-sha256 header: S3 takes only those bytes."""
        return str(
            self._s3.generate_presigned_url(
                "upload_part",
                Params={
                    "Bucket": self.bucket,
                    "Key": key,
                    "UploadId": upload_id,
                    "PartNumber": part_number,
                    "ChecksumSHA256": checksum_sha256,
                },
                ExpiresIn=expires_in,
            )
        )

    def stored_parts(self, key: str, upload_id: str) -> dict[int, StoredPart]:
        """The parts S3 holds for this upload, by part number."""
        parts: dict[int, StoredPart] = {}
        try:
            for page in self._s3.get_paginator("list_parts").paginate(
                Bucket=self.bucket, Key=key, UploadId=upload_id
            ):
                for part in page.get("Parts", []):
                    parts[int(part["PartNumber"])] = StoredPart(
                        int(part["Size"]), bare_etag(part["ETag"]), part.get("ChecksumSHA256")
                    )
        except Exception as error:
            raise self._upload_error(error, key) from error
        return parts

    def complete_multipart(self, key: str, upload_id: str, parts: Sequence[CompletedPart]) -> None:
        """Join the parts (ascending part numbers) into the object, which starts processing.

        S3 wants each part's checksum as well as its ETag when the upload was created with a checksum
        algorithm, and refuses the completion if one differs from what it verified.
        """
        try:
            self._s3.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={
                    "Parts": [
                        {
                            "PartNumber": part.number,
                            "ETag": f'"{bare_etag(part.etag)}"',
                            "ChecksumSHA256": part.checksum_sha256,
                        }
                        for part in parts
                    ]
                },
            )
        except Exception as error:
            raise self._upload_error(error, key) from error

    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Drop the upload and its parts; an upload already gone is fine."""
        try:
            self._s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except Exception as error:
            if error_code(error) != "NoSuchUpload":
                raise self._upload_error(error, key) from error
