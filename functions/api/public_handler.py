"""Lambda handler of the public share API: anyone with a link reads its metadata and downloads the file."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.logging import correlation_paths

from api.clock import Clock, utc_now
from api.files import CleanLinks
from api.gateway import build_resolver, error_responses, resolve, success_response
from api.models import DownloadLink, DownloadShareRequest, LockedShare, PublicShare, UnlockShareRequest
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


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    load_settings(ShareApiSettings)  # a bad deploy fails here, loudly, not as a route's 500
    return resolve(app, event, context)
