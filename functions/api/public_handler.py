"""Lambda handler of the public share API: anyone with a link reads its metadata and downloads the file."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths

from api.clock import Clock, utc_now
from api.files import CleanLinks
from api.gateway import build_resolver, error_responses, resolve, success_response
from api.models import DownloadLink, PublicShare
from api.settings import PublicApiSettings
from api.sharing import PublicShares
from common.aws import client
from common.observability import logger
from common.settings import load_settings
from common.storage import ObjectStore

app = build_resolver()

ShareToken = Annotated[str, Path(title="token", description="The token from the share link.")]


def services(clock: Clock = utc_now) -> PublicShares:
    """Read-and-count access only: the role behind this function can do nothing else."""
    from common.records import FileRecords  # deferred: it imports boto3, which costs every cold start
    from common.shares import ShareRecords

    settings = load_settings(PublicApiSettings)
    dynamodb = client("dynamodb")
    links = CleanLinks(ObjectStore(client("s3")), settings.clean_bucket, clock)
    return PublicShares(
        FileRecords(dynamodb, settings.files_table),
        ShareRecords(dynamodb, settings.files_table),
        links,
        clock,
    )


@app.get(
    "/shares/<token>",
    summary="Look at a share link",
    description=(
        "Name, size, type, thumbnail and expiry of a shared file. Never counts a download (link "
        "previews fetch it). Unknown, expired, revoked and used-up links all answer the same 404."
    ),
    operation_id="getShare",
    tags=["public"],
    responses={
        **success_response(200, "The shared file's metadata.", PublicShare),
        **error_responses(404, 429),
    },
)
def get_share(token: ShareToken) -> PublicShare:
    return services().lookup(token)


@app.post(
    "/shares/<token>/download",
    summary="Download a shared file",
    description="Counts one download (atomically, against maxDownloads) and returns a short-lived URL.",
    operation_id="downloadShare",
    tags=["public"],
    responses={
        **success_response(200, "A short-lived attachment URL.", DownloadLink),
        **error_responses(404, 429),
    },
)
def download_share(token: ShareToken) -> DownloadLink:
    return services().download(token)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    load_settings(PublicApiSettings)  # a bad deploy fails here, loudly, not as a route's 500
    return resolve(app, event, context)
