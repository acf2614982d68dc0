"""Request and response bodies of the HTTP API; the OpenAPI document is generated from them."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from common.model import Status

MAX_NAME_CHARS = 255
MAX_PARTS = 10_000
MIN_SHARE_SECONDS = 60
DEFAULT_SHARE_SECONDS = 7 * 24 * 3600
MAX_SHARE_SECONDS = 30 * 24 * 3600
MAX_SHARE_DOWNLOADS = 1_000_000
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100

# Bidirectional overrides and isolates make "invoice\u202efdp.exe" display as "invoiceexe.pdf".
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")
_LINE_BREAKING = frozenset({"Cc", "Zl", "Zp"})

# Error codes for validation failures, by the field they concern; anything else is InvalidRequest.
FIELD_ERROR_CODES = {
    "name": "InvalidName",
    "size": "InvalidSize",
    "contentType": "UnsupportedType",
    "uploadId": "InvalidUploadId",
    "parts": "InvalidParts",
    "expiresInSeconds": "InvalidExpiry",
    "maxDownloads": "InvalidMaxDownloads",
    "limit": "InvalidLimit",
    "nextToken": "InvalidNextToken",
}


def _check_name(name: str) -> str:
    if not name.strip():
        raise PydanticCustomError("InvalidName", "name must not be blank")
    if name in {".", ".."}:
        raise PydanticCustomError("InvalidName", "name must not be '.' or '..'")
    if "/" in name or "\\" in name:
        raise PydanticCustomError("InvalidName", "name must not contain '/' or '\\'")
    for char in name:
        if unicodedata.category(char) in _LINE_BREAKING or char in _BIDI_CONTROLS:
            raise PydanticCustomError(
                "InvalidName",
                "name must not contain control characters (found U+{point})",
                {"point": f"{ord(char):04X}"},
            )
    return name


def _normalise_media_type(value: Any) -> Any:
    """``Text/Plain; charset=utf-8`` -> ``text/plain``: the allow-list holds bare, lower-case types."""
    if isinstance(value, str):
        return value.split(";", 1)[0].strip().lower()
    return value


FileName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_NAME_CHARS,
        description="The file's display name: no path separators, no control characters, not '.' or '..'.",
        examples=["holiday.jpg"],
    ),
    AfterValidator(_check_name),
]
MediaType = Annotated[
    str,
    BeforeValidator(_normalise_media_type),
    Field(
        min_length=3,
        max_length=255,
        description="The declared MIME type; must be on the allow-list (parameters are ignored).",
        examples=["image/jpeg"],
    ),
]
Timestamp = Annotated[str, Field(description="UTC timestamp, ISO 8601 with milliseconds.")]
ShareState = Literal["ACTIVE", "EXPIRED", "EXHAUSTED"]


def _optional(**kwargs: Any) -> Any:
    """An optional response field that is left out of the JSON, rather than sent as null, when unset."""
    return Field(default=None, exclude_if=lambda value: value is None, **kwargs)


class ApiModel(BaseModel):
    # Titles in the OpenAPI document are the JSON names ("contentType", not "Contenttype").
    model_config = ConfigDict(field_title_generator=lambda name, _field: name)


class RequestModel(ApiModel):
    model_config = ConfigDict(frozen=True, field_title_generator=lambda name, _field: name)


# ---------------------------------------------------------------- requests
class CreateUploadRequest(RequestModel):
    name: FileName
    size: Annotated[int, Field(strict=True, ge=1, description="Exact size in bytes.")]
    contentType: MediaType


class UploadedPart(RequestModel):
    partNumber: Annotated[int, Field(strict=True, ge=1, le=MAX_PARTS)]
    etag: Annotated[str, Field(min_length=1, max_length=128, description="The part's ETag header from S3.")]


class CompleteUploadRequest(RequestModel):
    uploadId: Annotated[str, Field(min_length=1, max_length=1024)]
    parts: Annotated[list[UploadedPart], Field(min_length=1, max_length=MAX_PARTS)]


class CreateShareRequest(RequestModel):
    expiresInSeconds: Annotated[
        int,
        Field(
            strict=True,
            ge=MIN_SHARE_SECONDS,
            le=MAX_SHARE_SECONDS,
            description="Lifetime of the link (default 7 days, at most 30).",
        ),
    ] = DEFAULT_SHARE_SECONDS
    maxDownloads: Annotated[
        int | None,
        Field(
            strict=True, ge=1, le=MAX_SHARE_DOWNLOADS, description="Downloads allowed; unlimited if absent."
        ),
    ] = None


# ---------------------------------------------------------------- responses
class ErrorDetail(ApiModel):
    code: str = Field(description="Stable machine-readable reason, e.g. InvalidName, NotFound.")
    message: str


class ErrorResponse(ApiModel):
    error: ErrorDetail


class UploadTicket(ApiModel):
    """A presigned POST: send ``fields`` then the file as multipart/form-data to ``url``."""

    fileId: str
    url: str
    fields: dict[str, str]
    expiresAt: Timestamp


class PartUrl(ApiModel):
    partNumber: int
    url: str = Field(description="Presigned PUT for this part; keep the ETag response header.")


class MultipartPlan(ApiModel):
    """A multipart upload: PUT each part to its URL, then POST /uploads/{fileId}/complete."""

    fileId: str
    uploadId: str
    partSize: int = Field(description="Bytes per part; only the last part may be smaller.")
    parts: list[PartUrl]
    expiresAt: Timestamp


class Thumbnail(ApiModel):
    size: int = Field(description="Longest side in pixels.")
    url: str
    width: int | None = _optional()
    height: int | None = _optional()


class FileError(ApiModel):
    code: str
    message: str


class FileView(ApiModel):
    fileId: str
    name: str
    size: int
    contentType: str
    status: Status
    createdAt: Timestamp
    updatedAt: Timestamp
    sha256: str | None = _optional()
    width: int | None = _optional()
    height: int | None = _optional()
    pages: int | None = _optional(description="Page count of a PDF.")
    thumbnails: list[Thumbnail] | None = _optional(description="Only when READY.")
    error: FileError | None = _optional(description="Why the file was rejected or failed.")
    executionName: str | None = _optional(description="The ProcessUpload execution that handled it.")
    downloadUrl: str | None = _optional(description="Short-lived attachment download; only when READY.")


class FileList(ApiModel):
    items: list[FileView]
    nextToken: str | None = Field(description="Pass as nextToken for the next page; null on the last.")


class ShareCreated(ApiModel):
    shareId: str = Field(description="Identifies the share in the owner's list; revoke with it.")
    token: str = Field(description="The secret of the link; shown only once.")
    url: str
    expiresAt: Timestamp
    maxDownloads: int | None = _optional()


class ShareView(ApiModel):
    shareId: str
    fileId: str
    createdAt: Timestamp
    expiresAt: Timestamp
    maxDownloads: int | None = _optional()
    downloads: int
    state: ShareState


class ShareList(ApiModel):
    items: list[ShareView]


class PublicShare(ApiModel):
    """What anyone with the link sees before downloading."""

    name: str
    size: int
    contentType: str
    expiresAt: Timestamp
    thumbnailUrl: str | None = _optional()
    downloadsRemaining: int | None = _optional(description="Absent when downloads are unlimited.")


class DownloadLink(ApiModel):
    url: str
    expiresAt: Timestamp
