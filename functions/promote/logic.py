"""Idempotent copies of the upload into the files bucket (clean) or the quarantine bucket (infected)."""

from __future__ import annotations

from common.errors import SourceMissing
from common.model import FileRef, clean_key, quarantine_key
from common.storage import ObjectStore

SOURCE_VERSION = "source-version"


def _already_copied(store: ObjectStore, bucket: str, key: str, ref: FileRef) -> bool:
    metadata = store.metadata(bucket, key)
    return metadata is not None and metadata.get(SOURCE_VERSION) == ref.version


def promote(store: ObjectStore, ref: FileRef, size: int, clean_bucket: str, content_type: str) -> str:
    """Copy the scanned version into the files bucket with its detected type; a retry is a no-op."""
    key = clean_key(ref.owner_id, ref.file_id)
    if not _already_copied(store, clean_bucket, key, ref):
        store.copy(
            ref.bucket,
            ref.key,
            ref.version,
            size,
            clean_bucket,
            key,
            content_type,
            {SOURCE_VERSION: ref.version},
        )
    return key


def quarantine(store: ObjectStore, ref: FileRef, size: int, quarantine_bucket: str, signature: str) -> str:
    """Copy the infected version to quarantine, then remove it from ingest; a retry finishes the move."""
    key = quarantine_key(ref.owner_id, ref.file_id)
    if not _already_copied(store, quarantine_bucket, key, ref):
        try:
            store.copy(
                ref.bucket,
                ref.key,
                ref.version,
                size,
                quarantine_bucket,
                key,
                "application/octet-stream",
                {SOURCE_VERSION: ref.version, "signature": signature},
            )
        except SourceMissing:
            raise SourceMissing(f"file {ref.file_id}: upload gone before it reached quarantine") from None
    store.delete(ref.bucket, ref.key, ref.version)
    return key
