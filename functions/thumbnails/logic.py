"""Make an upload's thumbnail set and store it under deterministic keys, so a retry overwrites it."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import Protocol

from common.model import THUMBNAIL_SIZES, FileRef, thumbnail_key
from thumbnails.render import RENDERABLE_TYPES, render_thumbnails

# The original is decoded from a local copy: in memory while small, on disk (Lambda's /tmp) beyond this.
SPOOL_MEMORY_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_IMAGE_PIXELS = 50_000_000


class ThumbnailStore(Protocol):
    """What the step needs from storage; ``common.storage.ObjectStore`` provides it over S3."""

    def stream(
        self, bucket: str, key: str, version: str | None = None, chunk_size: int = ...
    ) -> Iterator[bytes]: ...

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
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES) as local_copy:
        for chunk in store.stream(ref.bucket, ref.key, ref.version):
            local_copy.write(chunk)
        local_copy.seek(0)
        thumbnails = render_thumbnails(local_copy, THUMBNAIL_SIZES, max_pixels, formats)
    results: list[dict[str, str | int]] = []
    for thumbnail in thumbnails:
        key = thumbnail_key(ref.owner_id, ref.file_id, thumbnail.size)
        store.put(
            clean_bucket,
            key,
            thumbnail.data,
            "image/webp",
            metadata={"source-version": ref.version},
        )
        results.append(
            {"size": thumbnail.size, "key": key, "width": thumbnail.width, "height": thumbnail.height}
        )
    return results
