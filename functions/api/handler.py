"""Lambda handler of the authenticated API: uploads, files and share management for the token's user."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.logging import correlation_paths

from api.clock import Clock, utc_now
from api.files import Files
from api.gateway import (
    JSON,
    JWT_SECURITY,
    build_resolver,
    caller_email,
    caller_id,
    error_responses,
    resolve,
    success_response,
)
from api.ingest import IngestStore
from api.issuing import quota_service, upload_service
from api.models import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    CompleteUploadRequest,
    CreateFilesShareRequest,
    CreateRequestLinkRequest,
    CreateShareRequest,
    CreateUploadRequest,
    FileList,
    FileView,
    MultipartPlan,
    RequestLinkCreated,
    RequestLinkList,
    RequestLinkView,
    ShareCreated,
    ShareDownloadLog,
    ShareList,
    ShareView,
    SignedParts,
    SignPartsRequest,
    UpdateRequestLinkRequest,
    UpdateShareRequest,
    UploadProgress,
    UploadTicket,
    UsageView,
)
from api.quotas import Quotas
from api.request_links import OwnerRequests
from api.settings import ApiSettings
from api.sharing import OwnerShares
from api.uploads import Uploads
from common.aws import client
from common.observability import logger
from common.settings import load_settings

app = build_resolver()

FileId = Annotated[str, Path(title="fileId", description="The file's id, as POST /uploads returned it.")]
ShareToken = Annotated[
    str, Path(title="token", description="The share token, or the shareId from GET /files/{fileId}/shares.")
]


@dataclass(frozen=True)
class Services:
    uploads: Uploads
    files: Files
    shares: OwnerShares
    quotas: Quotas


def services(clock: Clock = utc_now) -> Services:
    """Adapters over the cached boto3 clients; cheap enough to build per request."""
    from common.records import FileRecords  # deferred: it imports boto3, which costs every cold start
    from common.shares import ShareRecords

    settings = load_settings(ApiSettings)
    dynamodb = client("dynamodb")
    records = FileRecords(dynamodb, settings.files_table)
    shares = ShareRecords(dynamodb, settings.files_table)
    ingest = IngestStore(client("s3"), settings.ingest_bucket)
    quotas = quota_service(settings, clock)
    return Services(
        uploads=upload_service(settings, clock),
        files=Files(records, shares, ingest, settings.clean_bucket, clock, quotas),
        shares=OwnerShares(records, shares, settings.web_url, clock),
        quotas=quotas,
    )


@app.post(
    "/uploads",
    summary="Start an upload",
    description=(
        "Reserves a file id under the caller and returns a presigned POST (policy pins the key, "
        "1..size bytes, the Content-Type, 15 minutes). Above the single-part limit it returns a "
        "multipart plan instead: an S3 multipart upload whose parts each carry their SHA-256, signed "
        "part by part with POST /uploads/{fileId}/parts. Counts against the caller's limits: 409 "
        "QuotaExceeded when the file does not fit in the storage quota (files READY plus uploads in "
        "flight), 429 UploadRateExceeded with Retry-After past the hour's upload limit."
    ),
    operation_id="createUpload",
    tags=["uploads"],
    security=JWT_SECURITY,
    responses={
        **success_response(201, "Upload URL (or multipart plan) issued.", UploadTicket | MultipartPlan),
        **error_responses(400, 401, 409, 415, 429),
    },
)
def create_upload(request: Annotated[CreateUploadRequest, Body()]) -> Response[UploadTicket | MultipartPlan]:
    owner_id = caller_id(app)
    issued = services().uploads.create(owner_id, request, owner_email=caller_email(app))
    logger.info(
        "upload issued",
        extra={"fileId": issued.fileId, "size": request.size, "multipart": isinstance(issued, MultipartPlan)},
    )
    return Response(201, JSON, issued)


@app.get(
    "/me/usage",
    summary="Storage and upload usage",
    description=(
        "The caller's bytes stored (READY files) and held for uploads in flight, against the storage "
        "quota, and the upload URLs issued this hour against the hourly limit."
    ),
    operation_id="getUsage",
    tags=["uploads"],
    security=JWT_SECURITY,
    responses={**success_response(200, "The caller's usage.", UsageView), **error_responses(401, 429)},
)
def get_usage() -> UsageView:
    owner_id = caller_id(app)
    return services().quotas.usage(owner_id)


@app.get(
    "/uploads/<fileId>",
    summary="Resume an upload",
    description=(
        "For an unfinished multipart upload: the parts S3 already holds (every ListParts page), with "
        "their sizes, ETags and the SHA-256 checksums S3 verified, and the part numbers still missing. "
        "Sign the missing parts with POST /uploads/{fileId}/parts, send them, then complete. A finished "
        "upload is 409 UploadFinished; one aborted or expired is 404 UploadNotFound."
    ),
    operation_id="getUpload",
    tags=["uploads"],
    security=JWT_SECURITY,
    responses={
        **success_response(200, "What the upload holds and lacks.", UploadProgress),
        **error_responses(401, 404, 409, 429),
    },
)
def get_upload(fileId: FileId) -> UploadProgress:
    owner_id = caller_id(app)
    return services().uploads.progress(owner_id, fileId)


@app.post(
    "/uploads/<fileId>/parts",
    summary="Sign part uploads",
    description=(
        "Presigned PUT URLs (one hour) for up to 100 parts of a multipart upload. Each signs the "
        "part's SHA-256 (x-amz-checksum-sha256, which the PUT must send as given in headers), so S3 "
        "stores a part only if its bytes match (else 400 BadDigest): compute the checksum first."
    ),
    operation_id="signUploadParts",
    tags=["uploads"],
    security=JWT_SECURITY,
    responses={
        **success_response(200, "One URL per part, with the headers to send.", SignedParts),
        **error_responses(400, 401, 404, 409, 415, 429),
    },
)
def sign_upload_parts(fileId: FileId, request: Annotated[SignPartsRequest, Body()]) -> SignedParts:
    owner_id = caller_id(app)
    return services().uploads.sign_parts(owner_id, fileId, request)


@app.post(
    "/uploads/<fileId>/complete",
    summary="Finish a multipart upload",
    description=(
        "Joins the uploaded parts, each named by its ETag and SHA-256; they must be the parts S3 "
        "verified and add up to exactly the declared size."
    ),
    operation_id="completeUpload",
    tags=["uploads"],
    security=JWT_SECURITY,
    responses={
        **success_response(200, "The upload is complete; processing starts.", FileView),
        **error_responses(400, 401, 404, 409, 415, 429),
    },
)
def complete_upload(fileId: FileId, request: Annotated[CompleteUploadRequest, Body()]) -> FileView:
    owner_id = caller_id(app)
    completed = services().uploads.complete(owner_id, fileId, request)
    logger.info("multipart upload completed", extra={"fileId": fileId, "parts": len(request.parts)})
    return completed


@app.delete(
    "/uploads/<fileId>",
    summary="Abort an upload",
    description="Abandons an unfinished upload: its parts, any object already sent and its record.",
    operation_id="abortUpload",
    tags=["uploads"],
    security=JWT_SECURITY,
    responses={204: {"description": "Aborted."}, **error_responses(401, 404, 409, 429)},
)
def abort_upload(fileId: FileId) -> Response[None]:
    owner_id = caller_id(app)
    services().uploads.abort(owner_id, fileId)
    logger.info("upload aborted", extra={"fileId": fileId})
    return Response(204)


@app.get(
    "/files",
    summary="List files",
    description="The caller's files, newest first.",
    operation_id="listFiles",
    tags=["files"],
    security=JWT_SECURITY,
    responses={**success_response(200, "One page of files.", FileList), **error_responses(400, 401, 429)},
)
def list_files(
    limit: Annotated[
        int, Query(title="limit", ge=1, le=MAX_PAGE_SIZE, description="Page size.")
    ] = DEFAULT_PAGE_SIZE,
    nextToken: Annotated[
        str | None, Query(title="nextToken", max_length=64, description="The nextToken of the previous page.")
    ] = None,
) -> FileList:
    owner_id = caller_id(app)
    return services().files.page(owner_id, limit, nextToken)


@app.get(
    "/files/<fileId>",
    summary="Get a file",
    description="The file, with short-lived download and thumbnail URLs when it is READY.",
    operation_id="getFile",
    tags=["files"],
    security=JWT_SECURITY,
    responses={**success_response(200, "The file.", FileView), **error_responses(401, 404, 429)},
)
def get_file(fileId: FileId) -> FileView:
    owner_id = caller_id(app)
    return services().files.get(owner_id, fileId)


@app.delete(
    "/files/<fileId>",
    summary="Delete a file",
    description="Removes the file's objects, thumbnails, record and share links.",
    operation_id="deleteFile",
    tags=["files"],
    security=JWT_SECURITY,
    responses={204: {"description": "Deleted."}, **error_responses(401, 404, 429)},
)
def delete_file(fileId: FileId) -> Response[None]:
    owner_id = caller_id(app)
    services().files.delete(owner_id, fileId)
    logger.info("file deleted", extra={"fileId": fileId})
    return Response(204)


@app.post(
    "/files/<fileId>/shares",
    summary="Share a file",
    description=(
        "A share link: 7 days by default, at most 30, optional download limit, password, sliding expiry "
        "and download notices. READY files only."
    ),
    operation_id="createShare",
    tags=["shares"],
    security=JWT_SECURITY,
    responses={
        **success_response(201, "The link; its token is shown only this once.", ShareCreated),
        **error_responses(400, 401, 404, 409, 415, 429),
    },
)
def create_share(
    fileId: FileId, request: Annotated[CreateShareRequest | None, Body()] = None
) -> Response[ShareCreated]:
    owner_id = caller_id(app)
    created = services().shares.create(
        owner_id, fileId, request or CreateShareRequest(), owner_email=caller_email(app)
    )
    logger.info("share created", extra={"fileId": fileId, "shareId": created.shareId})  # never the token
    return Response(201, JSON, created)


@app.get(
    "/files/<fileId>/shares",
    summary="List a file's shares",
    operation_id="listShares",
    tags=["shares"],
    security=JWT_SECURITY,
    responses={
        **success_response(200, "The file's share links.", ShareList),
        **error_responses(401, 404, 429),
    },
)
def list_shares(fileId: FileId) -> ShareList:
    owner_id = caller_id(app)
    return services().shares.for_file(owner_id, fileId)


@app.post(
    "/shares",
    summary="Share several files",
    description="One link for up to 20 READY files; its page lists them, each with its own download.",
    operation_id="createFilesShare",
    tags=["shares"],
    security=JWT_SECURITY,
    responses={
        **success_response(201, "The link; its token is shown only this once.", ShareCreated),
        **error_responses(400, 401, 404, 409, 415, 429),
    },
)
def create_files_share(request: Annotated[CreateFilesShareRequest, Body()]) -> Response[ShareCreated]:
    owner_id = caller_id(app)
    created = services().shares.create_for_files(owner_id, request, owner_email=caller_email(app))
    logger.info("share created", extra={"fileIds": created.fileIds, "shareId": created.shareId})
    return Response(201, JSON, created)


@app.patch(
    "/shares/<token>",
    summary="Change a share",
    description=(
        "Changes only the fields sent: a new expiry (counted from now), download limit, password, sliding "
        "expiry or download notices; null removes a limit, the password, sliding expiry or notices."
    ),
    operation_id="updateShare",
    tags=["shares"],
    security=JWT_SECURITY,
    responses={
        **success_response(200, "The share as it is now.", ShareView),
        **error_responses(400, 401, 404, 415, 429),
    },
)
def update_share(token: ShareToken, request: Annotated[UpdateShareRequest, Body()]) -> ShareView:
    owner_id = caller_id(app)
    updated = services().shares.update(owner_id, token, request, owner_email=caller_email(app))
    logger.info(
        "share changed", extra={"shareId": updated.shareId, "fields": sorted(request.model_fields_set)}
    )
    return updated


@app.get(
    "/shares/<token>/downloads",
    summary="A share's download log",
    description=(
        "The link's most recent downloads (at most 100, none older than 90 days): when, which file, "
        "browser and OS family, and the country where a CDN in front of the API reports it. No addresses."
    ),
    operation_id="listShareDownloads",
    tags=["shares"],
    security=JWT_SECURITY,
    responses={
        **success_response(200, "The download log, newest first.", ShareDownloadLog),
        **error_responses(401, 404, 429),
    },
)
def list_share_downloads(token: ShareToken) -> ShareDownloadLog:
    owner_id = caller_id(app)
    return services().shares.downloads(owner_id, token)


@app.delete(
    "/shares/<token>",
    summary="Revoke a share",
    description="Revokes a link by its token or by the shareId from the owner's list.",
    operation_id="revokeShare",
    tags=["shares"],
    security=JWT_SECURITY,
    responses={204: {"description": "Revoked."}, **error_responses(401, 404, 429)},
)
def revoke_share(token: ShareToken) -> Response[None]:
    owner_id = caller_id(app)
    services().shares.revoke(owner_id, token)
    return Response(204)


def request_links(clock: Clock = utc_now) -> OwnerRequests:
    from common.request_links import RequestLinks  # deferred: it imports boto3

    settings = load_settings(ApiSettings)
    return OwnerRequests(RequestLinks(client("dynamodb"), settings.files_table), settings.web_url, clock)


RequestToken = Annotated[
    str, Path(title="token", description="The request link's token, or the requestId from GET /requests.")
]


@app.post(
    "/requests",
    summary="Create a request link",
    description=(
        "An upload-only link: guests without an account send files into the caller's files, at most "
        "maxFiles files and maxBytes bytes in all, until it expires (7 days by default, at most 30). "
        "Optional password and a note shown to guests. Guest uploads count against the caller's quota."
    ),
    operation_id="createRequestLink",
    tags=["requests"],
    security=JWT_SECURITY,
    responses={
        **success_response(201, "The link; its token is shown only this once.", RequestLinkCreated),
        **error_responses(400, 401, 415, 429),
    },
)
def create_request_link(
    request: Annotated[CreateRequestLinkRequest | None, Body()] = None,
) -> Response[RequestLinkCreated]:
    owner_id = caller_id(app)
    created = request_links().create(
        owner_id, request or CreateRequestLinkRequest(), owner_email=caller_email(app)
    )
    logger.info("request link created", extra={"requestId": created.requestId})  # never the token
    return Response(201, JSON, created)


@app.get(
    "/requests",
    summary="List request links",
    description="The caller's request links, newest first, each with the files and bytes it received.",
    operation_id="listRequestLinks",
    tags=["requests"],
    security=JWT_SECURITY,
    responses={
        **success_response(200, "The caller's request links.", RequestLinkList),
        **error_responses(401, 429),
    },
)
def list_request_links() -> RequestLinkList:
    owner_id = caller_id(app)
    return request_links().list(owner_id)


@app.patch(
    "/requests/<token>",
    summary="Change a request link",
    description=(
        "Only the fields sent change. A new lifetime counts from now: it extends the link, reopens an "
        "expired one or closes it sooner. New limits count what the link already received: below it, the "
        "link is full; above, guests may send the difference. null removes the password or the note. "
        "Uploads already issued are not affected."
    ),
    operation_id="updateRequestLink",
    tags=["requests"],
    security=JWT_SECURITY,
    responses={
        **success_response(200, "The link as it is now.", RequestLinkView),
        **error_responses(400, 401, 404, 409, 415, 429),
    },
)
def update_request_link(
    token: RequestToken, request: Annotated[UpdateRequestLinkRequest, Body()]
) -> RequestLinkView:
    owner_id = caller_id(app)
    return request_links().update(owner_id, token, request)


@app.delete(
    "/requests/<token>",
    summary="Revoke a request link",
    description="The link stops working at once; files it brought stay in the caller's files.",
    operation_id="revokeRequestLink",
    tags=["requests"],
    security=JWT_SECURITY,
    responses={204: {"description": "Revoked."}, **error_responses(401, 404, 429)},
)
def revoke_request_link(token: RequestToken) -> Response[None]:
    owner_id = caller_id(app)
    request_links().revoke(owner_id, token)
    return Response(204)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    load_settings(ApiSettings)  # a bad deploy fails here, loudly, not as a route's 500
    return resolve(app, event, context)
