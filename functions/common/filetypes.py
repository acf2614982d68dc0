"""The content types filepipe accepts, what kind each is, and how to name them for the allow-list."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FileType:
    mime: str
    kind: str  # image | document | text | archive | video | audio
    extension: str


KNOWN_TYPES: dict[str, FileType] = {
    t.mime: t
    for t in (
        FileType("image/jpeg", "image", "jpg"),
        FileType("image/png", "image", "png"),
        FileType("image/gif", "image", "gif"),
        FileType("image/webp", "image", "webp"),
        FileType("image/heic", "image", "heic"),
        FileType("application/pdf", "document", "pdf"),
        FileType("text/plain", "text", "txt"),
        FileType("text/csv", "text", "csv"),
        FileType("application/zip", "archive", "zip"),
        FileType(
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "document", "docx"
        ),
        FileType("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "document", "xlsx"),
        FileType(
            "application/vnd.openxmlformats-officedocument.presentationml.presentation", "document", "pptx"
        ),
        FileType("video/mp4", "video", "mp4"),
        FileType("audio/mpeg", "audio", "mp3"),
    )
}

DEFAULT_ALLOWED = tuple(KNOWN_TYPES)


def parse_allowed(value: str) -> frozenset[str]:
    """The ALLOWED_TYPES setting: comma-separated MIME types, each one filepipe knows how to detect."""
    types = frozenset(part.strip().lower() for part in value.split(",") if part.strip())
    unknown = sorted(types - KNOWN_TYPES.keys())
    if unknown:
        raise ValueError(f"unknown content types in ALLOWED_TYPES: {', '.join(unknown)}")
    if not types:
        raise ValueError("ALLOWED_TYPES is empty")
    return types
