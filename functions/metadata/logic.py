"""Extract an upload's metadata: streamed SHA-256 and size, image header details, PDF page count."""

from __future__ import annotations

import hashlib
import io
import tempfile
from collections.abc import Iterator
from typing import Any, Protocol

from common.model import FileRef
from metadata.pdf import PagesCountScanner, count_pages

PDF = "application/pdf"
# Enough for image headers with large EXIF/ICC blocks; beyond it the image is read whole, once more.
IMAGE_HEADER_BYTES = 256 * 1024
SPOOL_MEMORY_BYTES = 16 * 1024 * 1024
HASH_CHUNK_BYTES = 1024 * 1024


class SizedObject(Protocol):
    @property
    def size(self) -> int: ...


class MetadataReader(Protocol):
    """The reads the step needs; ``common.storage.ObjectStore`` provides them over S3."""

    def head(self, bucket: str, key: str, version: str | None = None) -> SizedObject: ...

    def read_range(self, bucket: str, key: str, version: str | None, start: int, length: int) -> bytes: ...

    def stream(
        self, bucket: str, key: str, version: str | None = None, chunk_size: int = ...
    ) -> Iterator[bytes]: ...


def extract_metadata(store: MetadataReader, ref: FileRef, content_type: str | None) -> dict[str, Any]:
    """``{sha256, size}`` plus ``width/height/exif`` for images and ``pages`` for PDFs when known."""
    pages: int | None = None
    scanner: PagesCountScanner | None = None
    if content_type == PDF:
        pages = count_pages(
            lambda start, length: store.read_range(ref.bucket, ref.key, ref.version, start, length),
            store.head(ref.bucket, ref.key, ref.version).size,
        )
        if pages is None:
            scanner = PagesCountScanner()  # the structure could not be followed: look while hashing

    sha256, size, head = _hash(store, ref, scanner)
    metadata: dict[str, Any] = {"sha256": sha256, "size": size}
    if scanner is not None:
        pages = scanner.largest
    if pages is not None:
        metadata["pages"] = pages
    if content_type is not None:
        metadata.update(_image_metadata(store, ref, content_type, size, head))
    return metadata


def _hash(store: MetadataReader, ref: FileRef, scanner: PagesCountScanner | None) -> tuple[str, int, bytes]:
    """SHA-256 and length of the object, one chunk in memory at a time, and its first bytes.

    The first ``IMAGE_HEADER_BYTES`` are kept so an image's header is read from this same pass.
    """
    digest = hashlib.sha256()
    size = 0
    head = b""
    for chunk in store.stream(ref.bucket, ref.key, ref.version, chunk_size=HASH_CHUNK_BYTES):
        digest.update(chunk)
        if size < IMAGE_HEADER_BYTES:
            head += chunk[: IMAGE_HEADER_BYTES - size]
        size += len(chunk)
        if scanner is not None:
            scanner.feed(chunk)
    return digest.hexdigest(), size, head


def _image_metadata(
    store: MetadataReader, ref: FileRef, content_type: str, size: int, header: bytes
) -> dict[str, Any]:
    from metadata.images import HEADER_FORMATS, read_image_info  # Pillow only for images

    if content_type not in HEADER_FORMATS:
        return {}
    info = read_image_info(io.BytesIO(header), content_type)
    if info is None and size > len(header):
        # Metadata before the pixels outgrew the header read (or the format needs the whole file).
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES) as local_copy:
            for chunk in store.stream(ref.bucket, ref.key, ref.version):
                local_copy.write(chunk)
            local_copy.seek(0)
            info = read_image_info(local_copy, content_type)
    if info is None:
        return {}
    result: dict[str, Any] = {"width": info.width, "height": info.height}
    if info.exif:
        result["exif"] = info.exif
    return result
