"""Decide whether an upload is acceptable: real size from S3, real type from its bytes, images decoded."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from common.errors import FileRejected
from common.filetypes import KNOWN_TYPES
from common.model import FileRef
from validate.sniff import SNIFF_BYTES, sniff

# Images are decoded from a local copy: in memory while small, on disk (Lambda's /tmp) beyond this.
SPOOL_MEMORY_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_IMAGE_PIXELS = 50_000_000


class SizedObject(Protocol):
    @property
    def size(self) -> int: ...


class ObjectReader(Protocol):
    """The reads validation needs; ``common.storage.ObjectStore`` provides them over S3."""

    def head(self, bucket: str, key: str, version: str | None = None) -> SizedObject: ...

    def read_prefix(self, bucket: str, key: str, version: str | None, length: int) -> bytes: ...

    def read_range(self, bucket: str, key: str, version: str | None, start: int, length: int) -> bytes: ...

    def stream(
        self, bucket: str, key: str, version: str | None = None, chunk_size: int = ...
    ) -> Iterator[bytes]: ...


@dataclass(frozen=True)
class ValidationRules:
    max_file_bytes: int
    allowed_types: frozenset[str]
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS


@dataclass(frozen=True)
class Validation:
    content_type: str
    size: int
    kind: str

    def to_state(self) -> dict[str, str | int]:
        return {"contentType": self.content_type, "size": self.size, "kind": self.kind}


def validate_upload(store: ObjectReader, ref: FileRef, rules: ValidationRules) -> Validation:
    """The detected type, size and kind of the upload, or ``FileRejected`` with a specific code."""
    size = store.head(ref.bucket, ref.key, ref.version).size
    if size == 0:
        raise FileRejected("the file is empty", code="EMPTY_FILE")
    if size > rules.max_file_bytes:
        raise FileRejected(
            f"the file has {size} bytes, more than the {rules.max_file_bytes} allowed", code="TOO_LARGE"
        )

    prefix = store.read_prefix(ref.bucket, ref.key, ref.version, SNIFF_BYTES)
    detection = sniff(
        prefix, size, lambda start, length: store.read_range(ref.bucket, ref.key, ref.version, start, length)
    )
    accepted = [mime for mime in detection.candidates if mime in rules.allowed_types]
    if not accepted:
        raise FileRejected(f"files of type {detection.label} are not accepted", code="UNSUPPORTED_TYPE")
    content_type = accepted[0]
    kind = KNOWN_TYPES[content_type].kind

    if kind == "image":
        _check_image(store, ref, content_type, prefix, rules.max_image_pixels)
    return Validation(content_type=content_type, size=size, kind=kind)


def _check_image(
    store: ObjectReader, ref: FileRef, content_type: str, prefix: bytes, max_pixels: int
) -> None:
    from validate import images  # Pillow is imported only when an image needs checking

    if content_type not in images.DECODERS:
        # No decoder here for this type (HEIC): its container signature, already matched, is the check.
        return
    images.check_declared_size(prefix, content_type, max_pixels)
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES) as local_copy:
        for chunk in store.stream(ref.bucket, ref.key, ref.version):
            local_copy.write(chunk)
        local_copy.seek(0)
        images.verify_image(local_copy, content_type, max_pixels)
