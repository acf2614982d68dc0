"""Lambda handler for the thumbnails step: wires S3 and settings to ``thumbnails.logic``."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from common.aws import client
from common.model import FileRef
from common.observability import bind_file, instrumented, logger
from common.settings import EnvSettings, load_settings
from common.storage import ObjectStore
from thumbnails.logic import make_thumbnails


class ThumbnailSettings(EnvSettings):
    ingest_bucket: str = Field(alias="INGEST_BUCKET", min_length=1)
    clean_bucket: str = Field(alias="CLEAN_BUCKET", min_length=1)
    max_image_pixels: int = Field(alias="MAX_IMAGE_PIXELS", gt=0)


@instrumented("thumbnails")
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    bind_file(event)
    settings = load_settings(ThumbnailSettings)
    ref = FileRef.upload_from_state(event, settings.ingest_bucket, "thumbnails")
    content_type = (event.get("validation") or {}).get("contentType")
    thumbnails = make_thumbnails(
        ObjectStore(client("s3")), ref, content_type, settings.clean_bucket, settings.max_image_pixels
    )
    logger.info("thumbnails written", extra={"thumbnails": thumbnails})
    return {"thumbnails": thumbnails}
