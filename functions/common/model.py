"""File references, statuses and the key layout shared by the API and the workflow."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from ulid import ULID

INGEST_PREFIX = "uploads/"
CLEAN_PREFIX = "files/"
QUARANTINE_PREFIX = "quarantine/"
# Copies of stored files GuardDuty scans again (a rescan): in the ingest bucket, guarded by its plan too.
RESCAN_PREFIX = "rescans/"
THUMBNAIL_SIZES = (256, 1024)

_OWNER_ID = r"[A-Za-z0-9-]{1,64}"
_FILE_ID = r"[0-9A-HJKMNP-TV-Z]{26}"
_INGEST_KEY = re.compile(rf"^{INGEST_PREFIX}(?P<owner>{_OWNER_ID})/(?P<file>{_FILE_ID})$")
_SCANNED_KEY = re.compile(
    rf"^(?:{INGEST_PREFIX}|{RESCAN_PREFIX})(?P<owner>{_OWNER_ID})/(?P<file>{_FILE_ID})$"
)
FILE_ID_PATTERN = re.compile(rf"^{_FILE_ID}$")


class Status(StrEnum):
    UPLOADING = "UPLOADING"
    PROCESSING = "PROCESSING"
    READY = "READY"
    REJECTED = "REJECTED"
    QUARANTINED = "QUARANTINED"
    FAILED = "FAILED"

    @property
    def is_final(self) -> bool:
        return self in {Status.READY, Status.REJECTED, Status.QUARANTINED}


class Channel(StrEnum):
    """How the owner hears of an outcome; each is sent, and remembered as sent, on its own."""

    EMAIL = "email"
    EVENT = "event"


def new_file_id() -> str:
    """A ULID: unique, URL-safe and sorted by creation time, so listings come newest first."""
    return str(ULID())


def ingest_key(owner_id: str, file_id: str) -> str:
    return f"{INGEST_PREFIX}{owner_id}/{file_id}"


def clean_prefix(owner_id: str, file_id: str) -> str:
    """Where everything served for one file lives: its promoted original and its thumbnails."""
    return f"{CLEAN_PREFIX}{owner_id}/{file_id}/"


def clean_key(owner_id: str, file_id: str) -> str:
    return f"{clean_prefix(owner_id, file_id)}original"


def thumbnail_key(owner_id: str, file_id: str, size: int) -> str:
    return f"{clean_prefix(owner_id, file_id)}thumb-{size}.webp"


def quarantine_key(owner_id: str, file_id: str) -> str:
    return f"{QUARANTINE_PREFIX}{owner_id}/{file_id}"


def rescan_key(owner_id: str, file_id: str) -> str:
    return f"{RESCAN_PREFIX}{owner_id}/{file_id}"


@dataclass(frozen=True)
class FileRef:
    """What every state passes along: where the upload is, never its bytes."""

    bucket: str
    key: str
    version: str
    owner_id: str
    file_id: str

    @classmethod
    def from_object(cls, bucket: str, key: str, version: str) -> FileRef:
        match = _INGEST_KEY.match(key)
        if match is None:
            raise ValueError(f"not an upload key: {key!r}")
        return cls(bucket, key, version, match["owner"], match["file"])

    @classmethod
    def from_scanned_object(cls, bucket: str, key: str, version: str) -> FileRef:
        """An object the malware scanner guards: an upload, or a stored file's copy made for a rescan."""
        match = _SCANNED_KEY.match(key)
        if match is None:
            raise ValueError(f"not a scanned key: {key!r}")
        return cls(bucket, key, version, match["owner"], match["file"])

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> FileRef:
        file = state["file"]
        return cls(file["bucket"], file["key"], file["version"], file["ownerId"], file["fileId"])

    @classmethod
    def upload_from_state(cls, state: dict[str, Any], ingest_bucket: str, step: str) -> FileRef:
        """The upload a step works on: steps read the ingest bucket only, whatever bucket the state names."""
        ref = cls.from_state(state)
        if ref.bucket != ingest_bucket:
            raise ValueError(f"{step} reads uploads from {ingest_bucket} only, not {ref.bucket}")
        return ref

    def to_state(self) -> dict[str, str]:
        return {
            "bucket": self.bucket,
            "key": self.key,
            "version": self.version,
            "ownerId": self.owner_id,
            "fileId": self.file_id,
        }

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


# A share link's download log keeps this many recent downloads, one item per slot, overwritten in turn.
SHARE_LOG_SLOTS = 100


def share_file_ids(share: Mapping[str, Any]) -> list[str]:
    """A share's files in page order; links made before shares held several files name one, ``fileId``."""
    file_ids = share.get("fileIds")
    if isinstance(file_ids, list) and file_ids:
        return [str(file_id) for file_id in file_ids]
    return [str(share["fileId"])]
