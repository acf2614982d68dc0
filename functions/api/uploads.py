"""Upload logic: check the declared file, reserve a server-generated key under the caller, sign the upload."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from api.clock import Clock, iso
from api.files import file_view, find_file
from api.ingest import CHECKSUM_ALGORITHM, CompletedPart, bare_etag
from api.models import (
    MAX_PARTS,
    CompleteUploadRequest,
    CreateUploadRequest,
    FileView,
    MultipartPlan,
    PartUrl,
    ReceivedPart,
    SignedParts,
    SignPartsRequest,
    UploadProgress,
    UploadTicket,
)
from common.errors import Conflict, InvalidRequest, NotFound
from common.model import Status, ingest_key, new_file_id

if TYPE_CHECKING:
    from api.ingest import IngestStore, StoredPart
    from api.quotas import Quotas
    from common.records import FileRecords

MIB = 1024 * 1024
# A presigned POST must be started within this; the policy's expiration is the signature's.
UPLOAD_URL_SECONDS = 15 * 60
# A part URL is asked for just before its PUT; an hour covers a slow part on a slow connection.
PART_URL_SECONDS = 60 * 60
# The ingest bucket's lifecycle aborts a multipart upload a day after it starts (template.yaml).
MULTIPART_UPLOAD_SECONDS = 24 * 60 * 60
CHECKSUM_HEADER = "x-amz-checksum-sha256"
MIN_PART_BYTES = 8 * MIB


@dataclass(frozen=True)
class UploadRules:
    max_file_bytes: int
    single_part_limit_bytes: int
    allowed_types: frozenset[str]


def part_size_for(size: int) -> int:
    """Whole MiB, at least 8 MiB, and large enough that the file needs at most 10,000 parts."""
    smallest = -(-size // MAX_PARTS)
    return max(MIN_PART_BYTES, -(-smallest // MIB) * MIB)


def part_count(size: int, part_size: int) -> int:
    return -(-size // part_size)


def expected_part_size(size: int, part_size: int, number: int) -> int:
    """The size of part ``number`` (from 1) of a ``size``-byte file: ``part_size``, the last the rest."""
    return min(part_size, size - (number - 1) * part_size)


@dataclass(frozen=True)
class OpenMultipart:
    """An unfinished multipart upload of the caller's: where its parts go and how the file is cut."""

    record: dict[str, Any]
    key: str
    upload_id: str
    part_size: int

    @property
    def size(self) -> int:
        return int(self.record["size"])

    @property
    def part_count(self) -> int:
        return part_count(self.size, self.part_size)

    def fits(self, number: int, held: StoredPart) -> bool:
        """Whether a part S3 holds has the size the plan gives part ``number``."""
        return held.size == expected_part_size(self.size, self.part_size, number)


class Uploads:
    """Issues upload URLs and finishes or abandons multipart uploads, always for the caller's own files."""

    def __init__(
        self, records: FileRecords, ingest: IngestStore, rules: UploadRules, clock: Clock, quotas: Quotas
    ) -> None:
        self._records = records
        self._ingest = ingest
        self._rules = rules
        self._clock = clock
        self._quotas = quotas

    def _check(self, request: CreateUploadRequest) -> None:
        if request.contentType not in self._rules.allowed_types:
            allowed = ", ".join(sorted(self._rules.allowed_types))
            raise InvalidRequest(
                f"{request.contentType!r} is not an accepted type (accepted: {allowed})",
                code="UnsupportedType",
            )
        if request.size > self._rules.max_file_bytes:
            raise InvalidRequest(
                f"the file is {request.size} bytes; the limit is {self._rules.max_file_bytes}",
                code="FileTooLarge",
            )

    def create(
        self,
        owner_id: str,
        request: CreateUploadRequest,
        owner_email: str | None = None,
        marks: Mapping[str, Any] | None = None,
    ) -> UploadTicket | MultipartPlan:
        """``marks``: more fields for the file's record, such as the request link a guest's upload came by."""
        self._check(request)
        file_id = new_file_id()
        key = ingest_key(owner_id, file_id)
        now = self._clock()
        record: dict[str, Any] = {
            "fileId": file_id,
            "ownerId": owner_id,
            "name": request.name,
            "size": request.size,
            "contentType": request.contentType,
            "status": Status.UPLOADING.value,
            "createdAt": iso(now),
            "updatedAt": iso(now),
        }
        if owner_email:
            record["ownerEmail"] = owner_email
        record.update(marks or {})
        single_part = request.size <= self._rules.single_part_limit_bytes
        url_seconds = UPLOAD_URL_SECONDS if single_part else MULTIPART_UPLOAD_SECONDS
        self._quotas.admit(owner_id, file_id, request.size, url_seconds)
        try:
            if single_part:
                url, fields = self._ingest.presign_post(
                    key, request.contentType, request.size, UPLOAD_URL_SECONDS
                )
                self._records.create(record)
                return UploadTicket(
                    fileId=file_id,
                    url=url,
                    fields=fields,
                    expiresAt=iso(now + timedelta(seconds=UPLOAD_URL_SECONDS)),
                )
            return self._plan_multipart(record, key)
        except Exception:
            self._quotas.release(owner_id, file_id)  # nothing was issued: its bytes are free again
            raise

    def _plan_multipart(self, record: dict[str, Any], key: str) -> MultipartPlan:
        part_size = part_size_for(record["size"])
        upload_id = self._ingest.start_multipart(key, record["contentType"])
        try:
            multipart = {
                "uploadId": upload_id,
                "partSize": part_size,
                "checksumAlgorithm": CHECKSUM_ALGORITHM,
            }
            self._records.create({**record, **multipart})
        except Exception:
            self._ingest.abort_multipart(key, upload_id)
            raise
        return MultipartPlan(
            fileId=record["fileId"],
            uploadId=upload_id,
            partSize=part_size,
            partCount=part_count(record["size"], part_size),
            checksumAlgorithm=CHECKSUM_ALGORITHM,
        )

    def _unfinished(self, owner_id: str, file_id: str) -> dict[str, Any]:
        record = find_file(self._records, owner_id, file_id)
        if record.get("status") != Status.UPLOADING.value:
            raise Conflict(
                f"the upload is finished (the file is {record.get('status')})", code="UploadFinished"
            )
        return record

    def _open_multipart(self, owner_id: str, file_id: str) -> OpenMultipart:
        record = self._unfinished(owner_id, file_id)
        if not record.get("uploadId"):
            raise NotFound("this file is not a multipart upload", code="UploadNotFound")
        if record.get("checksumAlgorithm") != CHECKSUM_ALGORITHM:
            # Its parts carry no checksums, which a completion with checksums cannot join.
            raise Conflict(
                "this upload was started without part checksums and cannot be resumed; "
                "delete it and upload the file again",
                code="UploadNotResumable",
            )
        return OpenMultipart(
            record, ingest_key(owner_id, file_id), str(record["uploadId"]), int(record["partSize"])
        )

    def progress(self, owner_id: str, file_id: str) -> UploadProgress:
        """The parts S3 holds for an unfinished upload (every ListParts page) and those still missing."""
        upload = self._open_multipart(owner_id, file_id)
        stored = self._ingest.stored_parts(upload.key, upload.upload_id)
        received: list[ReceivedPart] = []
        missing: list[int] = []
        for number in range(1, upload.part_count + 1):
            held = stored.get(number)
            if held is not None and held.checksum_sha256 and upload.fits(number, held):
                received.append(
                    ReceivedPart(
                        partNumber=number, size=held.size, etag=held.etag, checksumSha256=held.checksum_sha256
                    )
                )
            else:
                missing.append(number)
        record = upload.record
        return UploadProgress(
            fileId=file_id,
            uploadId=upload.upload_id,
            name=record["name"],
            size=upload.size,
            contentType=record["contentType"],
            partSize=upload.part_size,
            partCount=upload.part_count,
            checksumAlgorithm=CHECKSUM_ALGORITHM,
            parts=received,
            missingParts=missing,
        )

    def sign_parts(self, owner_id: str, file_id: str, request: SignPartsRequest) -> SignedParts:
        """A presigned PUT per part that signs the part's SHA-256, so S3 stores only the bytes it names."""
        upload = self._open_multipart(owner_id, file_id)
        numbers = [part.partNumber for part in request.parts]
        if len(set(numbers)) != len(numbers):
            raise InvalidRequest("each part number may appear once", code="InvalidParts")
        beyond = sorted(number for number in numbers if number > upload.part_count)
        if beyond:
            raise InvalidRequest(
                f"the upload has {upload.part_count} parts; there is no part {beyond[0]}", code="InvalidParts"
            )
        now = self._clock()
        signed = [
            PartUrl(
                partNumber=part.partNumber,
                url=self._ingest.presign_part(
                    upload.key, upload.upload_id, part.partNumber, part.checksumSha256, PART_URL_SECONDS
                ),
                headers={CHECKSUM_HEADER: part.checksumSha256},
            )
            for part in request.parts
        ]
        return SignedParts(parts=signed, expiresAt=iso(now + timedelta(seconds=PART_URL_SECONDS)))

    def complete(self, owner_id: str, file_id: str, request: CompleteUploadRequest) -> FileView:
        """Join the parts after checking they are the ones S3 verified and add up to the declared size."""
        upload = self._open_multipart(owner_id, file_id)
        if upload.upload_id != request.uploadId:
            raise NotFound("no multipart upload with this id for this file", code="UploadNotFound")
        numbers = [part.partNumber for part in request.parts]
        if len(set(numbers)) != len(numbers):
            raise InvalidRequest("each part number may appear once", code="InvalidParts")
        stored = self._ingest.stored_parts(upload.key, upload.upload_id)
        total = 0
        for part in request.parts:
            held = stored.get(part.partNumber)
            if held is None or held.etag != bare_etag(part.etag):
                raise InvalidRequest(
                    f"part {part.partNumber} was not uploaded with that ETag", code="InvalidParts"
                )
            if held.checksum_sha256 != part.checksumSha256:
                raise InvalidRequest(
                    f"part {part.partNumber} was not uploaded with that SHA-256", code="InvalidParts"
                )
            total += held.size
        if total != upload.size:
            raise InvalidRequest(
                f"the parts hold {total} bytes but the upload declared {upload.size}", code="SizeMismatch"
            )
        ordered = sorted(
            (CompletedPart(part.partNumber, part.etag, part.checksumSha256) for part in request.parts),
            key=lambda part: part.number,
        )
        self._ingest.complete_multipart(upload.key, upload.upload_id, ordered)
        return file_view(upload.record)

    def abort(self, owner_id: str, file_id: str) -> None:
        """Abandon an upload that has not finished: parts, any object already sent, and the record go."""
        record = self._unfinished(owner_id, file_id)
        key = ingest_key(owner_id, file_id)
        if record.get("uploadId"):
            self._ingest.abort_multipart(key, record["uploadId"])
        self._ingest.delete(self._ingest.bucket, key)
        self._quotas.release(owner_id, file_id)
        self._records.delete(owner_id, file_id)
