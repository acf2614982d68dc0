"""Lambda handler for the metadata step: wires S3 and settings to ``metadata.logic``."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from common.aws import client
from common.model import FileRef
from common.observability import bind_file, instrumented, logger
from common.settings import EnvSettings, load_settings
from common.storage import ObjectStore
from metadata.logic import extract_metadata


class MetadataSettings(EnvSettings):
    ingest_bucket: str = Field(alias="INGEST_BUCKET", min_length=1)


@instrumented("metadata")
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    bind_file(event)
    settings = load_settings(MetadataSettings)
    ref = FileRef.from_state(event)
    if ref.bucket != settings.ingest_bucket:
        raise ValueError(f"metadata reads uploads from {settings.ingest_bucket} only, not {ref.bucket}")
    content_type = (event.get("validation") or {}).get("contentType")
    metadata = extract_metadata(ObjectStore(client("s3")), ref, content_type)
    logger.info("metadata extracted", extra={"sha256": metadata["sha256"], "size": metadata["size"]})
    return metadata
