"""Upload logic: check the declared file, reserve a server-generated key under the caller, sign the upload."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from api.clock import Clock, iso
from api.files import file_view, find_file
from api.ingest import bare_etag
from api.models import (
    MAX_PARTS,
    CompleteUploadRequest,
    CreateUploadRequest,
    FileView,
    MultipartPlan,
    PartUrl,
    UploadTicket,
)
from common.errors import Conflict, InvalidRequest, NotFound
from common.model import Status, ingest_key, new_file_id

if TYPE_CHECKING:
    from api.ingest import IngestStore
    from common.records import FileRecords

MIB = 1024 * 1024
# A presigned POST must be started within this; the policy's expiration is the signature's.
UPLOAD_URL_SECONDS = 15 * 60
# Part URLs of one large upload are used one after another, so they live longer than the POST.
PART_URL_SECONDS = 60 * 60
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


class Uploads:
    """Issues upload URLs and finishes or abandons multipart uploads, always for the caller's own files."""

    def __init__(self, records: FileRecords, ingest: IngestStore, rules: UploadRules, clock: Clock) -> None:
        self._records = records
        self._ingest = ingest
        self._rules = rules
        self._clock = clock

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
        self, owner_id: str, request: CreateUploadRequest, owner_email: str | None = None
    ) -> UploadTicket | MultipartPlan:
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
        if request.size <= self._rules.single_part_limit_bytes:
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
        return self._plan_multipart(record, key, now)

    def _plan_multipart(self, record: dict[str, Any], key: str, now: datetime) -> MultipartPlan:
        part_size = part_size_for(record["size"])
        upload_id = self._ingest.start_multipart(key, record["contentType"])
        try:
            self._records.create({**record, "uploadId": upload_id, "partSize": part_size})
        except Exception:
            self._ingest.abort_multipart(key, upload_id)
            raise
        parts = [
            PartUrl(
                partNumber=number, url=self._ingest.presign_part(key, upload_id, number, PART_URL_SECONDS)
            )
            for number in range(1, part_count(record["size"], part_size) + 1)
        ]
        return MultipartPlan(
            fileId=record["fileId"],
            uploadId=upload_id,
            partSize=part_size,
            parts=parts,
            expiresAt=iso(now + timedelta(seconds=PART_URL_SECONDS)),
        )

    def _open_multipart(self, owner_id: str, file_id: str) -> dict[str, Any]:
        record = find_file(self._records, owner_id, file_id)
        if record.get("status") != Status.UPLOADING.value:
            raise Conflict(
                f"the upload is finished (the file is {record.get('status')})", code="UploadFinished"
            )
        return record

    def complete(self, owner_id: str, file_id: str, request: CompleteUploadRequest) -> FileView:
        """Join the parts after checking they add up to exactly the declared size."""
        record = self._open_multipart(owner_id, file_id)
        if not record.get("uploadId") or record["uploadId"] != request.uploadId:
            raise NotFound("no multipart upload with this id for this file", code="UploadNotFound")
        numbers = [part.partNumber for part in request.parts]
        if len(set(numbers)) != len(numbers):
            raise InvalidRequest("each part number may appear once", code="InvalidParts")
        key = ingest_key(owner_id, file_id)
        stored = self._ingest.stored_parts(key, request.uploadId)
        total = 0
        for part in request.parts:
            held = stored.get(part.partNumber)
            if held is None or held.etag != bare_etag(part.etag):
                raise InvalidRequest(
                    f"part {part.partNumber} was not uploaded with that ETag", code="InvalidParts"
                )
            total += held.size
        if total != record["size"]:
            raise InvalidRequest(
                f"the parts hold {total} bytes but the upload declared {record['size']}", code="SizeMismatch"
            )
        ordered = sorted((part.partNumber, part.etag) for part in request.parts)
        self._ingest.complete_multipart(key, request.uploadId, ordered)
        return file_view(record)

    def abort(self, owner_id: str, file_id: str) -> None:
        """Abandon an upload that has not finished: parts, any object already sent, and the record go."""
        record = self._open_multipart(owner_id, file_id)
        key = ingest_key(owner_id, file_id)
        if record.get("uploadId"):
            self._ingest.abort_multipart(key, record["uploadId"])
        self._ingest.delete(self._ingest.bucket, key)
        self._records.delete(owner_id, file_id)
