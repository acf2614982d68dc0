"""Lambda handler for the quarantine step."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from common.aws import client
from common.model import FileRef
from common.observability import bind_file, instrumented, logger
from common.settings import EnvSettings, load_settings
from common.storage import ObjectStore
from promote.logic import quarantine


class QuarantineSettings(EnvSettings):
    quarantine_bucket: str = Field(alias="QUARANTINE_BUCKET", min_length=1)


@instrumented("quarantine")
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    bind_file(event)
    settings = load_settings(QuarantineSettings)
    signature = event.get("scan", {}).get("signature") or "unknown"
    key = quarantine(
        ObjectStore(client("s3")),
        FileRef.from_state(event),
        event["validation"]["size"],
        settings.quarantine_bucket,
        signature,
    )
    logger.warning("infected upload quarantined", extra={"key": key, "signature": signature})
    return {"key": key}
