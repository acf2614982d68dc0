"""Lambda handler for the promote step."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from common.aws import client
from common.model import FileRef
from common.observability import bind_file, instrumented, logger
from common.settings import EnvSettings, load_settings
from common.storage import ObjectStore
from promote.logic import promote


class PromoteSettings(EnvSettings):
    clean_bucket: str = Field(alias="CLEAN_BUCKET", min_length=1)


@instrumented("promote")
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    bind_file(event)
    settings = load_settings(PromoteSettings)
    validation = event["validation"]
    key = promote(
        ObjectStore(client("s3")),
        FileRef.from_state(event),
        validation["size"],
        settings.clean_bucket,
        validation["contentType"],
    )
    logger.info("original promoted", extra={"key": key})
    return {"key": key}
