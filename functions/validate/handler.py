"""Lambda handler for the validate step: wires S3 and settings to ``validate.logic``."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import Field, field_validator

from common.aws import client
from common.errors import FileRejected
from common.filetypes import parse_allowed
from common.model import FileRef
from common.observability import bind_file, instrumented, logger, metrics
from common.settings import EnvSettings, load_settings
from common.storage import ObjectStore
from common.usage import UsageLedger
from validate.logic import ValidationRules, validate_upload
from validate.quota import hold_for_run


class ValidateSettings(EnvSettings):
    ingest_bucket: str = Field(alias="INGEST_BUCKET", min_length=1)
    max_file_bytes: int = Field(alias="MAX_FILE_BYTES", gt=0)
    allowed_types: frozenset[str] = Field(alias="ALLOWED_TYPES")
    max_image_pixels: int = Field(alias="MAX_IMAGE_PIXELS", gt=0)
    files_table: str = Field(alias="FILES_TABLE", min_length=1)
    user_storage_quota_bytes: int = Field(alias="USER_STORAGE_QUOTA_BYTES", ge=1)

    @field_validator("allowed_types", mode="before")
    @classmethod
    def _parse_allowed(cls, value: object) -> object:
        return parse_allowed(value) if isinstance(value, str) else value


@instrumented("validate")
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    bind_file(event)
    settings = load_settings(ValidateSettings)
    ref = FileRef.upload_from_state(event, settings.ingest_bucket, "validate")
    rules = ValidationRules(
        max_file_bytes=settings.max_file_bytes,
        allowed_types=settings.allowed_types,
        max_image_pixels=settings.max_image_pixels,
    )
    try:
        validation = validate_upload(ObjectStore(client("s3")), ref, rules)
        ledger = UsageLedger(client("dynamodb"), settings.files_table)
        hold_for_run(ledger, ref, validation.size, settings.user_storage_quota_bytes, int(time.time()))
    except FileRejected as rejection:
        logger.info("file rejected", extra={"code": rejection.code, "reason": rejection.message})
        metrics.add_metric(name="FilesRejected", unit=MetricUnit.Count, value=1)
        raise
    logger.info("file accepted", extra=validation.to_state())
    return validation.to_state()
