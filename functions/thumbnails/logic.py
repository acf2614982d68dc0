"""Make an upload's thumbnail set and store it under deterministic keys, so a retry overwrites it."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import IO, Protocol

from common.model import THUMBNAIL_SIZES, FileRef, thumbnail_key
from thumbnails.render import RENDERABLE_TYPES, Thumbnail, render_thumbnails

# The original is decoded from a local copy: in memory while small, on disk (Lambda's /tmp) beyond this.
SPOOL_MEMORY_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_IMAGE_PIXELS = 50_000_000


class OpenedOriginal(Protocol):
    """The original whose read has begun: its size, then its bytes in order."""

    size: int

    def read(self, length: int) -> bytes: ...

    def chunks(self, chunk_size: int = ...) -> Iterator[bytes]: ...

    def as_file(self, already_read: bytes = ...) -> IO[bytes]: ...

    def close(self) -> None: ...


class ThumbnailStore(Protocol):
    """What the step needs from storage; ``common.storage.ObjectStore`` provides it over S3."""

    def open(self, bucket: str, key: str, version: str | None = None) -> OpenedOriginal: ...

    def put(
        self, bucket: str, key: str, body: bytes, content_type: str, metadata: dict[str, str] | None = None
    ) -> None: ...


def make_thumbnails(
    store: ThumbnailStore,
    ref: FileRef,
    content_type: str | None,
    clean_bucket: str,
    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
) -> list[dict[str, str | int]]:
    """Render and store the set; an image type without a decoder here (HEIC) gets no thumbnails."""
    if content_type is not None and content_type not in RENDERABLE_TYPES:
        return []
    formats = [RENDERABLE_TYPES[content_type]] if content_type else list(RENDERABLE_TYPES.values())
    written: dict[int, dict[str, str | int]] = {}

    def store_thumbnail(thumbnail: Thumbnail) -> None:
        # Stored as soon as it is encoded: the smallest while the larger ones may still be encoding.
        key = thumbnail_key(ref.owner_id, ref.file_id, thumbnail.size)
        store.put(clean_bucket, key, thumbnail.data, "image/webp", metadata={"source-version": ref.version})
        written[thumbnail.size] = {
            "size": thumbnail.size,
            "key": key,
            "width": thumbnail.width,
            "height": thumbnail.height,
        }

    original = store.open(ref.bucket, ref.key, ref.version)
    try:
        if original.size <= SPOOL_MEMORY_BYTES:
            # Decoded from memory as the bytes arrive, rather than from a spool written and read back.
            with original.as_file() as source:
                render_thumbnails(source, THUMBNAIL_SIZES, max_pixels, formats, store_thumbnail)
        else:
            with tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES) as local_copy:
                for chunk in original.chunks():
                    local_copy.write(chunk)
                local_copy.seek(0)
                render_thumbnails(local_copy, THUMBNAIL_SIZES, max_pixels, formats, store_thumbnail)
    finally:
        original.close()
    return [written[size] for size in sorted(written)]
