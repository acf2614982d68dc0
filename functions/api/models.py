"""Request and response bodies of the HTTP API; the OpenAPI document is generated from them."""

from __future__ import annotations

import base64
import binascii
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from common.model import FILE_ID_PATTERN, Status

MAX_NAME_CHARS = 255
MAX_PARTS = 10_000
# Part URLs signed per request: a few seconds of parts for a browser, a small answer for the API.
MAX_SIGNED_PARTS = 100
SHA256_BYTES = 32
MIN_SHARE_SECONDS = 60
DEFAULT_SHARE_SECONDS = 7 * 24 * 3600
MAX_SHARE_SECONDS = 30 * 24 * 3600
MAX_SHARE_DOWNLOADS = 1_000_000
MIN_SHARE_PASSWORD_CHARS = 6
MAX_SHARE_PASSWORD_CHARS = 128
MAX_SHARE_FILES = 20
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
    "password": "InvalidPassword",
    "slidingExpirySeconds": "InvalidSlidingExpiry",
    "notifyOn": "InvalidNotifyOn",
    "fileIds": "InvalidFileIds",
    "fileId": "InvalidFileId",
    "limit": "InvalidLimit",
    "nextToken": "InvalidNextToken",
    "maxFiles": "InvalidMaxFiles",
    "maxBytes": "InvalidMaxBytes",
    "note": "InvalidNote",
    "receipt": "InvalidReceipt",
    "uploads": "InvalidUploads",
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


def _check_password(password: str) -> str:
    if not password.strip():
        raise PydanticCustomError("InvalidPassword", "password must not be blank")
    return password


def _check_unique(file_ids: list[str]) -> list[str]:
    if len(set(file_ids)) != len(file_ids):
        raise PydanticCustomError("InvalidFileIds", "fileIds must not repeat a file")
    return file_ids


def _check_sha256(value: str) -> str:
    """Exactly what S3 takes in x-amz-checksum-sha256: the 32-byte digest in canonical base64."""
    try:
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != SHA256_BYTES or base64.b64encode(digest).decode() != value:
        raise PydanticCustomError(
            "InvalidChecksum", "checksumSha256 must be a SHA-256 digest in base64 (44 characters)"
        )
    return value


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
PartNumber = Annotated[int, Field(strict=True, ge=1, le=MAX_PARTS)]
Sha256Checksum = Annotated[
    str,
    AfterValidator(_check_sha256),
    Field(
        description="The part's SHA-256 digest in base64, as S3's x-amz-checksum-sha256 header carries it.",
        examples=["47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="],
        json_schema_extra={"pattern": "^[A-Za-z0-9+/]{43}=$", "minLength": 44, "maxLength": 44},
    ),
]
FileIdString = Annotated[str, Field(pattern=FILE_ID_PATTERN.pattern, description="A file id (ULID).")]
ShareLifetime = Annotated[int, Field(strict=True, ge=MIN_SHARE_SECONDS, le=MAX_SHARE_SECONDS)]
ShareDownloadLimit = Annotated[int, Field(strict=True, ge=1, le=MAX_SHARE_DOWNLOADS)]
SharePassword = Annotated[
    str,
    Field(
        min_length=MIN_SHARE_PASSWORD_CHARS,
        max_length=MAX_SHARE_PASSWORD_CHARS,
        description="Visitors must give this password; only a slow hash of it is stored.",
    ),
    AfterValidator(_check_password),
]
# What a visitor types: any length the owner could have chosen reads alike, right or wrong.
VisitorPassword = Annotated[str, Field(min_length=1, max_length=MAX_SHARE_PASSWORD_CHARS)]
ShareState = Literal["ACTIVE", "EXPIRED", "EXHAUSTED"]
ShareNotify = Annotated[
    Literal["FIRST", "EVERY"],
    Field(
        description="Tell the owner (event on the bus, and email when a sender is configured) on the "
        "first download only, or on every one."
    ),
]


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
    partNumber: PartNumber
    etag: Annotated[str, Field(min_length=1, max_length=128, description="The part's ETag header from S3.")]
    checksumSha256: Sha256Checksum


class PartChecksum(RequestModel):
    partNumber: PartNumber
    checksumSha256: Sha256Checksum


class SignPartsRequest(RequestModel):
    parts: Annotated[
        list[PartChecksum],
        Field(min_length=1, max_length=MAX_SIGNED_PARTS, description="The parts to sign, each once."),
    ]


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
    password: SharePassword | None = None
    slidingExpirySeconds: Annotated[
        ShareLifetime | None,
        Field(
            description="Each download keeps the link alive at least this long from then on, but never "
            "past 30 days from when the expiry was last set."
        ),
    ] = None
    notifyOn: ShareNotify | None = None


class CreateFilesShareRequest(CreateShareRequest):
    fileIds: Annotated[
        list[FileIdString],
        Field(min_length=1, max_length=MAX_SHARE_FILES, description="The READY files the link shares."),
        AfterValidator(_check_unique),
    ]


class UpdateShareRequest(RequestModel):
    """Only the fields sent change; ``null`` removes a limit, the password, sliding expiry or notices."""

    expiresInSeconds: Annotated[
        ShareLifetime | None, Field(description="A new lifetime, counted from now.")
    ] = None
    maxDownloads: Annotated[
        ShareDownloadLimit | None, Field(description="A new download limit; null for unlimited.")
    ] = None
    password: Annotated[SharePassword | None, Field(description="A new password; null for none.")] = None
    slidingExpirySeconds: Annotated[
        ShareLifetime | None, Field(description="A new sliding window; null turns sliding off.")
    ] = None
    notifyOn: Annotated[ShareNotify | None, Field(description="null: no more notices.")] = None


class UnlockShareRequest(RequestModel):
    password: VisitorPassword


class DownloadShareRequest(RequestModel):
    password: Annotated[VisitorPassword | None, Field(description="Required for a protected link.")] = None
    fileId: Annotated[
        FileIdString | None, Field(description="Which of the link's files; required when it has several.")
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


ChecksumAlgorithm = Literal["SHA256"]


class MultipartPlan(ApiModel):
    """A multipart upload whose every part carries its SHA-256, which S3 checks.

    For each part: compute its SHA-256, get a URL from POST /uploads/{fileId}/parts, PUT the part there
    with the headers given; then POST /uploads/{fileId}/complete. An interrupted upload resumes from
    GET /uploads/{fileId}.
    """

    fileId: str
    uploadId: str
    partSize: int = Field(description="Bytes per part; only the last part may be smaller.")
    partCount: int = Field(description="Parts numbered 1..partCount, part n starting at (n-1) * partSize.")
    checksumAlgorithm: ChecksumAlgorithm


class PartUrl(ApiModel):
    partNumber: int
    url: str = Field(description="Presigned PUT for this part; keep the ETag response header.")
    headers: dict[str, str] = Field(
        description="Send these headers with the PUT, unchanged: the part's checksum is signed, so S3 "
        "refuses the PUT without it (403) and refuses bytes that do not match it (400 BadDigest)."
    )


class SignedParts(ApiModel):
    parts: list[PartUrl]
    expiresAt: Timestamp


class ReceivedPart(ApiModel):
    partNumber: int
    size: int
    etag: str
    checksumSha256: str


class UploadProgress(ApiModel):
    """What an unfinished multipart upload holds, to resume it with only the parts that are missing."""

    fileId: str
    uploadId: str
    name: str
    size: int
    contentType: str
    partSize: int
    partCount: int
    checksumAlgorithm: ChecksumAlgorithm
    parts: list[ReceivedPart] = Field(
        description="The parts S3 holds that fit the plan (their number and size), ascending, with the "
        "checksum S3 verified: a client compares it with its own before skipping a part."
    )
    missingParts: list[int] = Field(description="Part numbers still to send, ascending.")


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
    requestId: str | None = _optional(description="The request link a guest sent the file through.")


class FileList(ApiModel):
    items: list[FileView]
    nextToken: str | None = Field(description="Pass as nextToken for the next page; null on the last.")


class ShareCreated(ApiModel):
    shareId: str = Field(description="Identifies the share in the owner's list; revoke with it.")
    token: str = Field(description="The secret of the link; shown only once.")
    url: str
    expiresAt: Timestamp
    maxDownloads: int | None = _optional()
    fileIds: list[str] = Field(description="The shared files, in the order the link's page lists them.")
    passwordProtected: bool
    slidingExpirySeconds: int | None = _optional()
    notifyOn: str | None = _optional()


class ShareView(ApiModel):
    shareId: str
    fileId: str = Field(description="The first of fileIds.")
    fileIds: list[str]
    createdAt: Timestamp
    expiresAt: Timestamp
    maxDownloads: int | None = _optional()
    downloads: int
    state: ShareState
    passwordProtected: bool
    slidingExpirySeconds: int | None = _optional()
    latestExpiresAt: Timestamp | None = _optional(
        description="With sliding expiry: the latest the link can live unless its owner changes it."
    )
    notifyOn: str | None = _optional()


class ShareList(ApiModel):
    items: list[ShareView]


class SharedFile(ApiModel):
    fileId: str
    name: str
    size: int
    contentType: str
    thumbnailUrl: str | None = _optional()


class PublicShare(ApiModel):
    """What anyone with the link (and its password, if it has one) sees before downloading.

    ``name``, ``size``, ``contentType`` and ``thumbnailUrl`` describe the first file; ``files`` lists all.
    """

    name: str
    size: int
    contentType: str
    expiresAt: Timestamp
    thumbnailUrl: str | None = _optional()
    downloadsRemaining: int | None = _optional(description="Absent when downloads are unlimited.")
    files: list[SharedFile] = Field(description="The link's READY files.")


class LockedShare(ApiModel):
    """A link with a password: nothing about its files until POST /shares/{token}/unlock."""

    passwordRequired: Literal[True] = True


class ShareDownload(ApiModel):
    download: int = Field(description="Which download of the link this was (1 is the first).")
    at: Timestamp
    fileId: str
    fileName: str
    browser: str = Field(
        description="Browser family from the User-Agent, e.g. Firefox; never the full string."
    )
    platform: str = Field(description="Operating system family, e.g. Windows.")
    country: str | None = _optional(description="ISO country code, when a CDN in front of the API tells it.")


class ShareDownloadLog(ApiModel):
    items: list[ShareDownload] = Field(description="Newest first; only the most recent are kept.")
    downloads: int = Field(description="Downloads counted over the link's whole life.")
    kept: int = Field(description="At most this many recent downloads are kept, none longer than keptDays.")
    keptDays: int


class DownloadLink(ApiModel):
    url: str
    expiresAt: Timestamp


class UsageView(ApiModel):
    """The caller's storage and upload counts against the stack's per-user limits."""

    usedBytes: int = Field(description="storedBytes + reservedBytes: what counts against quotaBytes.")
    storedBytes: int = Field(description="Bytes of the caller's READY files.")
    reservedBytes: int = Field(description="Bytes held for uploads in flight, until each ends.")
    quotaBytes: int = Field(description="The most a user may store.")
    uploadsThisHour: int = Field(description="Upload URLs issued to the caller this hour (UTC).")
    uploadsPerHour: int = Field(description="The most upload URLs a user is issued an hour.")
    hourResetsAt: Timestamp = Field(description="When the hourly count starts again.")


# ---------------------------------------------------------------- request links
MAX_REQUEST_FILES = 1000
DEFAULT_REQUEST_FILES = 10
MAX_REQUEST_BYTES = 1024**4
DEFAULT_REQUEST_BYTES = 1024**3
MAX_NOTE_CHARS = 1000
MAX_STATUS_UPLOADS = 50
RequestState = Literal["ACTIVE", "EXPIRED", "USED_UP"]


def _check_note(note: str) -> str:
    """Line breaks and tabs are fine in a note; other control and bidirectional characters are not."""
    for char in note:
        if char in "\n\t":
            continue
        if unicodedata.category(char) in _LINE_BREAKING or char in _BIDI_CONTROLS:
            raise PydanticCustomError(
                "InvalidNote",
                "note must not contain control characters (found U+{point})",
                {"point": f"{ord(char):04X}"},
            )
    return note


Receipt = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9_-]{43}$",
        description="The receipt the upload was issued with: it proves the upload is the caller's.",
    ),
]
GuestNote = Annotated[
    str,
    Field(min_length=1, max_length=MAX_NOTE_CHARS, description="Shown to guests on the link's page."),
    AfterValidator(_check_note),
]


RequestFileLimit = Annotated[int, Field(strict=True, ge=1, le=MAX_REQUEST_FILES)]
RequestByteLimit = Annotated[int, Field(strict=True, ge=1, le=MAX_REQUEST_BYTES)]


class CreateRequestLinkRequest(RequestModel):
    expiresInSeconds: Annotated[
        int,
        Field(
            strict=True,
            ge=MIN_SHARE_SECONDS,
            le=MAX_SHARE_SECONDS,
            description="How long guests can upload through the link (default 7 days, at most 30).",
        ),
    ] = DEFAULT_SHARE_SECONDS
    maxFiles: Annotated[RequestFileLimit, Field(description="Files the link accepts in all.")] = (
        DEFAULT_REQUEST_FILES
    )
    maxBytes: Annotated[RequestByteLimit, Field(description="Bytes the link accepts in all.")] = (
        DEFAULT_REQUEST_BYTES
    )
    password: SharePassword | None = None
    note: GuestNote | None = None


class UpdateRequestLinkRequest(RequestModel):
    """Only the fields sent change; ``null`` removes the password or the note."""

    expiresInSeconds: Annotated[
        ShareLifetime | None, Field(description="A new lifetime, counted from now.")
    ] = None
    maxFiles: Annotated[
        RequestFileLimit | None,
        Field(description="A new limit on files in all; below the files received, the link is full."),
    ] = None
    maxBytes: Annotated[
        RequestByteLimit | None,
        Field(description="A new limit on bytes in all; below the bytes received, the link is full."),
    ] = None
    password: Annotated[SharePassword | None, Field(description="A new password; null for none.")] = None
    note: Annotated[GuestNote | None, Field(description="A new note; null for none.")] = None


class GuestUploadRequest(CreateUploadRequest):
    password: Annotated[VisitorPassword | None, Field(description="Required for a protected link.")] = None


class GuestSignPartsRequest(SignPartsRequest):
    receipt: Receipt


class GuestCompleteUploadRequest(CompleteUploadRequest):
    receipt: Receipt


class GuestUploadReceipt(RequestModel):
    receipt: Receipt


class GuestUploadRef(RequestModel):
    fileId: FileIdString
    receipt: Receipt


class GuestStatusRequest(RequestModel):
    uploads: Annotated[
        list[GuestUploadRef],
        Field(min_length=1, max_length=MAX_STATUS_UPLOADS, description="The guest's uploads, by receipt."),
    ]


class RequestLinkCreated(ApiModel):
    requestId: str = Field(description="Identifies the link in the owner's list; revoke with it.")
    token: str = Field(description="The secret of the link; shown only once.")
    url: str
    expiresAt: Timestamp
    maxFiles: int
    maxBytes: int
    passwordProtected: bool
    note: str | None = _optional()


class RequestLinkView(ApiModel):
    requestId: str
    createdAt: Timestamp
    expiresAt: Timestamp
    maxFiles: int
    maxBytes: int
    filesReceived: int = Field(description="Uploads started through the link, each counted when issued.")
    bytesReceived: int = Field(description="Their declared sizes, reserved when each upload was issued.")
    state: RequestState
    passwordProtected: bool
    note: str | None = _optional()


class RequestLinkList(ApiModel):
    items: list[RequestLinkView]


class PublicRequestLink(ApiModel):
    """What a guest sees of a request link (with its password, if it has one): nothing of the owner's."""

    expiresAt: Timestamp
    filesLeft: int
    bytesLeft: int
    note: str | None = _optional()


class LockedRequestLink(ApiModel):
    """A request link with a password: nothing more until POST /requests/{token}/unlock."""

    passwordRequired: Literal[True] = True


class GuestUploadTicket(UploadTicket):
    """A presigned POST, and the receipt that lets the guest follow this upload."""

    receipt: str = Field(description="Keep it: POST /requests/{token}/status shows the upload's outcome.")


class GuestMultipartPlan(MultipartPlan):
    """A multipart plan (sign parts and complete under /requests/{token}/uploads/{fileId}) and its receipt."""

    receipt: str = Field(description="Send it to sign parts, complete, and read the outcome.")


class GuestUpload(ApiModel):
    """An upload's progress through scanning, as its guest sees it: never a link to the file."""

    fileId: str
    name: str
    size: int
    status: Status
    error: FileError | None = _optional(description="Why the file was rejected or quarantined.")


class GuestUploadList(ApiModel):
    items: list[GuestUpload]
