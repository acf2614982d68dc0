"""Lambda handler for the metadata step: wires S3 and settings to ``metadata.logic``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from common.aws import client
from common.model import FileRef
from common.observability import bind_file, instrumented, logger
from common.settings import EnvSettings, load_settings
from common.storage import ObjectStore
from metadata.logic import extract_metadata


class Validated(BaseModel):
    """What the validate step found, passed on by the state machine."""

    content_type: str = Field(alias="contentType", min_length=1)
    size: int = Field(ge=0)


class MetadataSettings(EnvSettings):
    ingest_bucket: str = Field(alias="INGEST_BUCKET", min_length=1)


@instrumented("metadata")
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    bind_file(event)
    settings = load_settings(MetadataSettings)
    ref = FileRef.upload_from_state(event, settings.ingest_bucket, "metadata")
    validation = Validated.model_validate(event["validation"])
    metadata = extract_metadata(ObjectStore(client("s3")), ref, validation.content_type, validation.size)
    logger.info("metadata extracted", extra={"fields": sorted(metadata)})
    return metadata
