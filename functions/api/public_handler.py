"""Lambda handler of the public API: share links (read, download) and request links (guest uploads)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.logging import correlation_paths

from api.clock import Clock, utc_now
from api.files import CleanLinks
from api.gateway import JSON, build_resolver, error_responses, resolve, success_response
from api.issuing import upload_service
from api.models import (
    DownloadLink,
    DownloadShareRequest,
    GuestCompleteUploadRequest,
    GuestMultipartPlan,
    GuestSignPartsRequest,
    GuestStatusRequest,
    GuestUpload,
    GuestUploadList,
    GuestUploadReceipt,
    GuestUploadRequest,
    GuestUploadTicket,
    LockedRequestLink,
    LockedShare,
    PublicRequestLink,
    PublicShare,
    SignedParts,
    UnlockShareRequest,
    UploadProgress,
)
from api.request_links import GuestUploads
from api.settings import ShareApiSettings
from api.sharing import PublicShares
from api.visitors import Visitor
from common.aws import client
from common.observability import logger
from common.settings import load_settings
from common.storage import ObjectStore

app = build_resolver()

ShareToken = Annotated[str, Path(title="token", description="The token from the share link.")]


def services(clock: Clock = utc_now) -> PublicShares:
    """Read, count and log access only, and download notices: the role behind this function can do no more."""
    from api.notices import DownloadNotices  # deferred, as these import boto3: it costs every cold start
    from common.records import FileRecords
    from common.shares import ShareRecords
    from notify.handler import BusPublisher

    settings = load_settings(ShareApiSettings)
    dynamodb = client("dynamodb")
    links = CleanLinks(ObjectStore(client("s3")), settings.clean_bucket, clock)
    return PublicShares(
        FileRecords(dynamodb, settings.files_table),
        ShareRecords(dynamodb, settings.files_table),
        links,
        clock,
        DownloadNotices(BusPublisher(client("events"), settings.event_bus_name)),
    )


def visitor() -> Visitor:
    """The sender as API Gateway saw it; a country only where a CDN in front of the API adds one."""
    event = app.current_event
    return Visitor(
        address=event.request_context.http.source_ip or None,
        user_agent=event.headers.get("user-agent") or "",
        country=event.headers.get("cloudfront-viewer-country"),
    )


@app.get(
    "/shares/<token>",
    summary="Look at a share link",
    description=(
        "Name, size, type, thumbnail and expiry of the shared files. Never counts a download (link "
        "previews fetch it). A link with a password answers only {passwordRequired: true}: "
        "POST /shares/{token}/unlock shows the rest. Unknown, expired, revoked and used-up links all "
        "answer the same 404."
    ),
    operation_id="getShare",
    tags=["public"],
    responses={
        **success_response(
            200, "The shared files' metadata, or that a password is needed.", PublicShare | LockedShare
        ),
        **error_responses(404, 429),
    },
)
def get_share(token: ShareToken) -> PublicShare | LockedShare:
    return services().lookup(token)


@app.post(
    "/shares/<token>/unlock",
    summary="Open a link that has a password",
    description=(
        "What GET /shares/{token} shows of a link without a password, for the right password. A wrong "
        "password answers exactly like an unknown, expired, revoked or used-up link (404). Attempts are "
        "limited per link and per client in 15-minute windows (429 with Retry-After); right ones are free."
    ),
    operation_id="unlockShare",
    tags=["public"],
    responses={
        **success_response(200, "The shared files' metadata.", PublicShare),
        **error_responses(400, 404, 415, 429),
    },
)
def unlock_share(token: ShareToken, request: Annotated[UnlockShareRequest, Body()]) -> PublicShare:
    return services().unlock(token, request.password, visitor())


@app.post(
    "/shares/<token>/download",
    summary="Download a shared file",
    description=(
        "Counts one download (atomically, against maxDownloads), logs it for the owner (time, browser and "
        "OS family, country when known) and returns a short-lived URL. The password, for a link that has "
        "one, travels in this body, never in the URL; fileId says which file of a link that has several."
    ),
    operation_id="downloadShare",
    tags=["public"],
    responses={
        **success_response(200, "A short-lived attachment URL.", DownloadLink),
        **error_responses(400, 404, 415, 429),
    },
)
def download_share(
    token: ShareToken, request: Annotated[DownloadShareRequest | None, Body()] = None
) -> DownloadLink:
    return services().download(token, request or DownloadShareRequest(), visitor())


def guest_uploads(clock: Clock = utc_now) -> GuestUploads:
    """Request links for guests: their uploads go through the owner's upload path, as the link's owner."""
    from common.records import FileRecords  # deferred, as these import boto3: it costs every cold start
    from common.request_links import RequestLinks

    settings = load_settings(ShareApiSettings)
    dynamodb = client("dynamodb")
    return GuestUploads(
        RequestLinks(dynamodb, settings.files_table),
        FileRecords(dynamodb, settings.files_table),
        upload_service(settings, clock),
        clock,
    )


RequestToken = Annotated[str, Path(title="token", description="The token from the request link.")]
GuestFileId = Annotated[str, Path(title="fileId", description="The fileId the upload was issued with.")]
_GONE = (
    "Unknown, expired, revoked and used-up links, wrong passwords and receipts that do not match all "
    "answer the same 404."
)


@app.get(
    "/requests/<token>",
    summary="Look at a request link",
    description=(
        "The owner's note and how many files and bytes the link still takes. A link with a password "
        f"answers only {{passwordRequired: true}}: POST /requests/{{token}}/unlock shows the rest. {_GONE}"
    ),
    operation_id="getRequestLink",
    tags=["public"],
    responses={
        **success_response(
            200,
            "The link's note and limits, or that a password is needed.",
            PublicRequestLink | LockedRequestLink,
        ),
        **error_responses(404, 429),
    },
)
def get_request_link(token: RequestToken) -> PublicRequestLink | LockedRequestLink:
    return guest_uploads().lookup(token)


@app.post(
    "/requests/<token>/unlock",
    summary="Open a request link that has a password",
    description=(
        "What GET /requests/{token} shows of a link without a password, for the right password. Attempts "
        f"are limited per link and per client in 15-minute windows (429 with Retry-After). {_GONE}"
    ),
    operation_id="unlockRequestLink",
    tags=["public"],
    responses={
        **success_response(200, "The link's note and limits.", PublicRequestLink),
        **error_responses(400, 404, 415, 429),
    },
)
def unlock_request_link(
    token: RequestToken, request: Annotated[UnlockShareRequest, Body()]
) -> PublicRequestLink:
    return guest_uploads().unlock(token, request.password, visitor())


@app.post(
    "/requests/<token>/uploads",
    summary="Upload through a request link",
    description=(
        "As POST /uploads, into the link owner's files: a presigned POST, or above the single-part limit a "
        "multipart plan (sign parts and complete under /requests/{token}/uploads/{fileId}), with a receipt "
        "that proves the upload is the guest's. The file and its declared size are reserved against the "
        "link's limits first (400 RequestLimitExceeded when the file is larger than what the link still "
        "takes) and count against the owner's quota. The password, for a link that has one, travels in "
        f"this body. {_GONE}"
    ),
    operation_id="createGuestUpload",
    tags=["public"],
    responses={
        **success_response(
            201,
            "Upload URL (or multipart plan) issued, with its receipt.",
            GuestUploadTicket | GuestMultipartPlan,
        ),
        **error_responses(400, 404, 409, 415, 429),
    },
)
def create_guest_upload(
    token: RequestToken, request: Annotated[GuestUploadRequest, Body()]
) -> Response[GuestUploadTicket | GuestMultipartPlan]:
    issued = guest_uploads().create(token, request, visitor())
    logger.info("guest upload issued", extra={"fileId": issued.fileId, "size": request.size})
    return Response(201, JSON, issued)


@app.post(
    "/requests/<token>/uploads/<fileId>/progress",
    summary="Resume a guest's upload",
    description=(
        "As GET /uploads/{fileId}, for the holder of the upload's receipt (in the body, so it stays out of "
        "URLs and logs): the parts S3 already holds and those still missing, so a reload or a lost "
        "connection resumes the upload instead of starting it over. A finished upload is 409 "
        f"UploadFinished; one aborted or expired is 404 UploadNotFound. {_GONE}"
    ),
    operation_id="getGuestUploadProgress",
    tags=["public"],
    responses={
        **success_response(200, "What the upload holds and lacks.", UploadProgress),
        **error_responses(400, 404, 409, 415, 429),
    },
)
def get_guest_upload_progress(
    token: RequestToken, fileId: GuestFileId, request: Annotated[GuestUploadReceipt, Body()]
) -> UploadProgress:
    return guest_uploads().progress(token, fileId, request)


@app.post(
    "/requests/<token>/uploads/<fileId>/parts",
    summary="Sign a guest's part uploads",
    description=f"As POST /uploads/{{fileId}}/parts, for the holder of the upload's receipt. {_GONE}",
    operation_id="signGuestUploadParts",
    tags=["public"],
    responses={
        **success_response(200, "One URL per part, with the headers to send.", SignedParts),
        **error_responses(400, 404, 409, 415, 429),
    },
)
def sign_guest_upload_parts(
    token: RequestToken, fileId: GuestFileId, request: Annotated[GuestSignPartsRequest, Body()]
) -> SignedParts:
    return guest_uploads().sign_parts(token, fileId, request)


@app.post(
    "/requests/<token>/uploads/<fileId>/complete",
    summary="Finish a guest's multipart upload",
    description=f"As POST /uploads/{{fileId}}/complete, for the holder of the upload's receipt. {_GONE}",
    operation_id="completeGuestUpload",
    tags=["public"],
    responses={
        **success_response(200, "The upload is complete; scanning starts.", GuestUpload),
        **error_responses(400, 404, 409, 415, 429),
    },
)
def complete_guest_upload(
    token: RequestToken, fileId: GuestFileId, request: Annotated[GuestCompleteUploadRequest, Body()]
) -> GuestUpload:
    return guest_uploads().complete(token, fileId, request)


@app.post(
    "/requests/<token>/status",
    summary="Follow a guest's uploads",
    description=(
        "Where each upload named by its receipt stands: UPLOADING, PROCESSING (being scanned), READY, "
        "REJECTED or QUARANTINED with the reason. Never a download link. Works while the link exists, "
        f"even once it has expired or is used up. {_GONE}"
    ),
    operation_id="getGuestUploads",
    tags=["public"],
    responses={
        **success_response(200, "The uploads whose receipts match.", GuestUploadList),
        **error_responses(400, 404, 415, 429),
    },
)
def guest_upload_status(
    token: RequestToken, request: Annotated[GuestStatusRequest, Body()]
) -> GuestUploadList:
    return guest_uploads().status(token, request)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    load_settings(ShareApiSettings)  # a bad deploy fails here, loudly, not as a route's 500
    return resolve(app, event, context)
