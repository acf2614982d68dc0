"""File logic: list, show (with short-lived download links only when READY) and delete a caller's files."""

from __future__ import annotations

import unicodedata
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from api.clock import Clock, iso
from api.models import FileError, FileList, FileView, Thumbnail
from common.errors import InvalidRequest, NotFound
from common.model import (
    FILE_ID_PATTERN,
    THUMBNAIL_SIZES,
    Status,
    clean_key,
    clean_prefix,
    ingest_key,
    thumbnail_key,
)

if TYPE_CHECKING:
    from api.ingest import IngestStore
    from api.quotas import Quotas
    from common.records import FileRecords
    from common.shares import ShareRecords
    from common.storage import ObjectStore

DOWNLOAD_URL_SECONDS = 300
THUMBNAIL_TYPE = "image/webp"
# RFC 5987 attr-char beyond what urllib.parse.quote always keeps (letters, digits and "_.-~").
_ATTR_CHARS = "!#$&+^`|"


def content_disposition(name: str) -> str:
    """``attachment`` with the UTF-8 name (RFC 6266 ``filename*``) and an ASCII fallback for old clients."""
    decomposed = unicodedata.normalize("NFKD", name)
    fallback = "".join(
        char if " " <= char <= "~" and char not in '"\\%' else "_"
        for char in decomposed
        if not unicodedata.combining(char)
    ).strip()
    stem, dot, extension = fallback.rpartition(".")
    if not any(char.isalnum() for char in (stem if dot else fallback)):
        # Nothing readable survives (a Japanese name, say): a generic name with the real extension.
        fallback = f"download.{extension}" if dot and extension.isalnum() else "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe=_ATTR_CHARS)}"


def find_file(records: FileRecords, owner_id: str, file_id: str) -> dict[str, Any]:
    """The caller's record; a malformed id, a missing file and another user's file all read the same."""
    record = records.get(owner_id, file_id) if FILE_ID_PATTERN.fullmatch(file_id) else None
    if record is None:
        raise NotFound("no such file", code="FileNotFound")
    return record


def thumbnail_entries(record: dict[str, Any]) -> list[dict[str, int]]:
    """The thumbnail set the workflow recorded (``[{size, key, width, height}]``), sizes we know only."""
    entries = record.get("thumbnails")
    found: list[dict[str, int]] = []
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and entry.get("size") in THUMBNAIL_SIZES:
            found.append({name: int(entry[name]) for name in ("size", "width", "height") if name in entry})
    return sorted(found, key=lambda entry: entry["size"])


class CleanLinks:
    """Presigned GETs from the clean bucket only: attachments, with the content type detected on upload."""

    def __init__(self, store: ObjectStore, clean_bucket: str, clock: Clock) -> None:
        self._store = store
        self._bucket = clean_bucket
        self._clock = clock

    def expires_at(self) -> str:
        return iso(self._clock() + timedelta(seconds=DOWNLOAD_URL_SECONDS))

    def original(self, record: dict[str, Any]) -> str:
        return self._store.presign_get(
            self._bucket,
            clean_key(record["ownerId"], record["fileId"]),
            DOWNLOAD_URL_SECONDS,
            record["contentType"],
            content_disposition(record["name"]),
        )

    def thumbnail(self, record: dict[str, Any], size: int) -> str:
        return self._store.presign_get(
            self._bucket,
            thumbnail_key(record["ownerId"], record["fileId"], size),
            DOWNLOAD_URL_SECONDS,
            THUMBNAIL_TYPE,
            content_disposition(f"{record['fileId']}-{size}.webp"),
        )

    def thumbnails(self, record: dict[str, Any]) -> list[Thumbnail]:
        return [
            Thumbnail(url=self.thumbnail(record, entry["size"]), **entry)
            for entry in thumbnail_entries(record)
        ]


def file_view(record: dict[str, Any], links: CleanLinks | None = None) -> FileView:
    """The File of the API; links (download, thumbnails) only for READY files and only when asked."""
    ready = record.get("status") == Status.READY.value
    error = record.get("error")
    return FileView(
        fileId=record["fileId"],
        name=record["name"],
        size=record["size"],
        contentType=record["contentType"],
        status=Status(record["status"]),
        createdAt=record["createdAt"],
        updatedAt=record["updatedAt"],
        sha256=record.get("sha256"),
        width=record.get("width"),
        height=record.get("height"),
        pages=record.get("pages"),
        executionName=record.get("executionName") or None,
        error=FileError(code=str(error.get("code")), message=str(error.get("message", "")))
        if isinstance(error, dict) and error.get("code")
        else None,
        thumbnails=links.thumbnails(record) if links and ready else None,
        downloadUrl=links.original(record) if links and ready else None,
        requestId=record.get("requestId"),
    )


class Files:
    """The caller's files: every lookup is keyed by the caller's ``sub``, so no one reaches another's."""

    def __init__(
        self,
        records: FileRecords,
        shares: ShareRecords,
        store: IngestStore,
        clean_bucket: str,
        clock: Clock,
        quotas: Quotas,
    ) -> None:
        self._records = records
        self._quotas = quotas
        self._shares = shares
        self._store = store
        self._clean_bucket = clean_bucket
        self._links = CleanLinks(store, clean_bucket, clock)

    def page(self, owner_id: str, limit: int, next_token: str | None) -> FileList:
        if next_token is not None and not FILE_ID_PATTERN.fullmatch(next_token):
            raise InvalidRequest("nextToken is not one this API issued", code="InvalidNextToken")
        records, last = self._records.list_for_owner(owner_id, limit, next_token)
        return FileList(items=[file_view(record) for record in records], nextToken=last)

    def get(self, owner_id: str, file_id: str) -> FileView:
        return file_view(find_file(self._records, owner_id, file_id), self._links)

    def delete(self, owner_id: str, file_id: str) -> None:
        """Shares first (links to it alone die at once, others drop it), then objects, the record last so a
        retry can finish the job.

        Quarantined objects stay where they are: they are evidence, not the user's data.
        """
        record = find_file(self._records, owner_id, file_id)
        self._shares.forget_file(owner_id, file_id)
        key = ingest_key(owner_id, file_id)
        if record.get("uploadId") and record.get("status") == Status.UPLOADING.value:
            self._store.abort_multipart(key, record["uploadId"])
        self._store.delete(self._store.bucket, key)
        self._store.delete_prefix(self._clean_bucket, clean_prefix(owner_id, file_id))
        self._quotas.release(owner_id, file_id)
        self._records.delete(owner_id, file_id)
