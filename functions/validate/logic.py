"""Decide whether an upload is acceptable: real size from S3, real type from its bytes, images decoded."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Protocol

from common.errors import FileRejected
from common.filetypes import KNOWN_TYPES
from common.model import FileRef
from validate.sniff import SNIFF_BYTES, sniff

# Images are decoded from a local copy: in memory while small, on disk (Lambda's /tmp) beyond this.
SPOOL_MEMORY_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_IMAGE_PIXELS = 50_000_000


class OpenedUpload(Protocol):
    """An upload whose read has begun: its size, then its bytes in order."""

    size: int

    def read(self, length: int) -> bytes: ...

    def chunks(self, chunk_size: int = ...) -> Iterator[bytes]: ...

    def as_file(self, already_read: bytes = ...) -> IO[bytes]: ...

    def close(self) -> None: ...


class ObjectReader(Protocol):
    """The reads validation needs; ``common.storage.ObjectStore`` provides them over S3."""

    def open(self, bucket: str, key: str, version: str | None = None) -> OpenedUpload: ...

    def read_range(self, bucket: str, key: str, version: str | None, start: int, length: int) -> bytes: ...


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
    """The detected type, size and kind of the upload, or ``FileRejected`` with a specific code.

    One read of the object serves it all: the size its response reports, the first bytes for the type,
    and (for an image only, once its header passed) the rest for the decode. Other files are never read
    past their first bytes (zips also get ranged reads of their central directory).
    """
    upload = store.open(ref.bucket, ref.key, ref.version)
    try:
        size = upload.size
        if size == 0:
            raise FileRejected("the file is empty", code="EMPTY_FILE")
        if size > rules.max_file_bytes:
            raise FileRejected(
                f"the file has {size} bytes, more than the {rules.max_file_bytes} allowed", code="TOO_LARGE"
            )

        prefix = upload.read(SNIFF_BYTES)
        detection = sniff(
            prefix,
            size,
            lambda start, length: store.read_range(ref.bucket, ref.key, ref.version, start, length),
        )
        accepted = [mime for mime in detection.candidates if mime in rules.allowed_types]
        if not accepted:
            raise FileRejected(f"files of type {detection.label} are not accepted", code="UNSUPPORTED_TYPE")
        content_type = accepted[0]
        kind = KNOWN_TYPES[content_type].kind

        if kind == "image":
            _check_image(upload, content_type, prefix, rules.max_image_pixels)
    finally:
        upload.close()
    return Validation(content_type=content_type, size=size, kind=kind)


def _check_image(upload: OpenedUpload, content_type: str, prefix: bytes, max_pixels: int) -> None:
    from validate import images  # Pillow is imported only when an image needs checking

    if content_type not in images.DECODERS:
        # No decoder here for this type (HEIC): its container signature, already matched, is the check.
        return
    images.check_declared_size(prefix, content_type, max_pixels)
    if upload.size <= SPOOL_MEMORY_BYTES:
        # Decoded from memory as the bytes arrive, rather than from a spool written and read back.
        images.verify_image(upload.as_file(prefix), content_type, max_pixels)
        return
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES) as local_copy:
        local_copy.write(prefix)
        for chunk in upload.chunks():
            local_copy.write(chunk)
        local_copy.seek(0)
        images.verify_image(local_copy, content_type, max_pixels)
