"""Lambda handler for the record step."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import Field

from common.aws import client
from common.observability import bind_file, instrumented, logger, metrics
from common.records import FileRecords
from common.settings import EnvSettings, load_settings
from common.storage import ObjectStore
from common.usage import UsageLedger
from record.logic import record_step


class RecordSettings(EnvSettings):
    files_table: str = Field(alias="FILES_TABLE", min_length=1)
    clean_bucket: str = Field(alias="CLEAN_BUCKET", min_length=1)


@instrumented("record")
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    bind_file(event)
    settings = load_settings(RecordSettings)
    record_step(
        FileRecords(client("dynamodb"), settings.files_table),
        UsageLedger(client("dynamodb"), settings.files_table),
        ObjectStore(client("s3")),
        settings.clean_bucket,
        event,
    )
    logger.info("record written", extra={"outcome": event["outcome"]})
    if event["outcome"] != "PROCESSING":
        metrics.add_dimension(name="outcome", value=event["outcome"])
        metrics.add_metric(name="FilesProcessed", unit=MetricUnit.Count, value=1)
        if event["outcome"] == "READY":
            metrics.add_metric(
                name="BytesProcessed", unit=MetricUnit.Bytes, value=event["validation"]["size"]
            )
    return {"outcome": event["outcome"]}
