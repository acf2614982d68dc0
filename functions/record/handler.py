"""Lambda handler for the record step."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from common.aws import client
from common.observability import bind_file, logger
from common.records import FileRecords
from common.settings import EnvSettings, load_settings
from record.logic import record


class RecordSettings(EnvSettings):
    files_table: str = Field(alias="FILES_TABLE", min_length=1)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    bind_file(event)
    settings = load_settings(RecordSettings)
    record(FileRecords(client("dynamodb"), settings.files_table), event)
    logger.info("record written", extra={"outcome": event["outcome"]})
    return {"outcome": event["outcome"]}
