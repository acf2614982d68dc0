"""Decide whether an upload is acceptable: size from S3, type from its first bytes, image headers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from common.errors import FileRejected
from common.filetypes import KNOWN_TYPES
from common.model import FileRef
from common.storage import ObjectHead
from validate.sniff import SNIFF_BYTES, sniff

DEFAULT_MAX_IMAGE_PIXELS = 50_000_000


class ObjectReader(Protocol):
    """The reads validation needs; ``common.storage.ObjectStore`` provides them over S3."""

    def read_head(self, bucket: str, key: str, version: str | None, length: int) -> ObjectHead: ...

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

    Only the first bytes are read (zips also get ranged reads of their central directory): the size comes
    with them. An image's pixels are checked where they are decoded anyway, by the thumbnail step.
    """
    head = store.read_head(ref.bucket, ref.key, ref.version, SNIFF_BYTES)
    size = head.size
    if size == 0:
        raise FileRejected("the file is empty", code="EMPTY_FILE")
    if size > rules.max_file_bytes:
        raise FileRejected(
            f"the file has {size} bytes, more than the {rules.max_file_bytes} allowed", code="TOO_LARGE"
        )

    detection = sniff(
        head.data,
        size,
        lambda start, length: store.read_range(ref.bucket, ref.key, ref.version, start, length),
    )
    accepted = [mime for mime in detection.candidates if mime in rules.allowed_types]
    if not accepted:
        raise FileRejected(f"files of type {detection.label} are not accepted", code="UNSUPPORTED_TYPE")
    content_type = accepted[0]
    kind = KNOWN_TYPES[content_type].kind
    if kind == "image":
        from validate.images import check_declared_size  # Pillow is imported only for images

        check_declared_size(head.data, content_type, rules.max_image_pixels)
    return Validation(content_type=content_type, size=size, kind=kind)
