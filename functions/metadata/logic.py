"""Extract an upload's metadata from as few bytes as possible: image headers, PDF page counts."""

from __future__ import annotations

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


class MetadataReader(Protocol):
    """The reads the step needs; ``common.storage.ObjectStore`` provides them over S3."""

    def read_range(self, bucket: str, key: str, version: str | None, start: int, length: int) -> bytes: ...

    def stream(
        self, bucket: str, key: str, version: str | None = None, chunk_size: int = ...
    ) -> Iterator[bytes]: ...


def extract_metadata(store: MetadataReader, ref: FileRef, content_type: str, size: int) -> dict[str, Any]:
    """``width/height/exif`` for images and ``pages`` for PDFs, when the file shows them.

    The file's size and type come from the validate step and its SHA-256 from the scan, which read
    every byte anyway; here only the parts that hold the metadata are read.
    """
    if content_type == PDF:
        return _pdf_metadata(store, ref, size)
    return _image_metadata(store, ref, content_type, size)


def _pdf_metadata(store: MetadataReader, ref: FileRef, size: int) -> dict[str, Any]:
    pages = count_pages(
        lambda start, length: store.read_range(ref.bucket, ref.key, ref.version, start, length), size
    )
    if pages is None:
        # The structure could not be followed: look for the page tree in the whole file instead.
        scanner = PagesCountScanner()
        for chunk in store.stream(ref.bucket, ref.key, ref.version):
            scanner.feed(chunk)
        pages = scanner.largest
    return {} if pages is None else {"pages": pages}


def _image_metadata(store: MetadataReader, ref: FileRef, content_type: str, size: int) -> dict[str, Any]:
    from metadata.images import HEADER_FORMATS, read_image_info  # Pillow only for images

    if content_type not in HEADER_FORMATS:
        return {}
    header = store.read_range(ref.bucket, ref.key, ref.version, 0, IMAGE_HEADER_BYTES)
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
