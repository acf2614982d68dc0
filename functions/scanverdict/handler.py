"""Lambda handler of the scan verdict: wires the verdict store and Step Functions to ``scanverdict.logic``."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from common.aws import client
from common.observability import bind_file, instrumented, logger
from common.settings import EnvSettings, load_settings
from common.verdict_store import ScanVerdicts
from scanverdict.callbacks import StepFunctionsTasks
from scanverdict.logic import handle

SECONDS_PER_DAY = 86400


class ScanVerdictSettings(EnvSettings):
    files_table: str = Field(alias="FILES_TABLE", min_length=1)
    ingest_bucket: str = Field(alias="INGEST_BUCKET", min_length=1)
    # Verdict items outlive the upload they are about: a replay within the ingest retention still finds them.
    retention_days: int = Field(alias="VERDICT_RETENTION_DAYS", gt=0)


@instrumented("scanverdict")
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    bind_file(event)
    settings = load_settings(ScanVerdictSettings)
    handled = handle(
        event,
        settings.ingest_bucket,
        ScanVerdicts(client("dynamodb"), settings.files_table, settings.retention_days * SECONDS_PER_DAY),
        StepFunctionsTasks(client("stepfunctions")),
    )
    if handled is None:
        logger.info("scan result about an object that is not an upload of this stack: ignored")
        return {"action": "ignored"}
    logger.info("scan verdict", extra=handled.as_log())
    return handled.as_log()
