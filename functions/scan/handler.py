"""Lambda handler for the scan step: wires S3, clamd and settings to ``scan.logic``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import Field, field_validator, model_validator

from common.aws import client
from common.errors import FilepipeError
from common.model import FileRef
from common.observability import bind_file, instrumented, logger, metrics
from common.settings import EnvSettings, load_settings
from common.storage import ObjectStore
from scan.clamd import ClamdAddress, ClamdClient
from scan.embedded import shared_embedded_clamd
from scan.logic import ScanPolicy, scan_object

EMBEDDED = "embedded"
# Time kept back from the Lambda deadline so a slow scan ends as ScannerUnavailable, not a timeout.
_DEADLINE_MARGIN_SECONDS = 5.0


class ScanSettings(EnvSettings):
    clamd_address: str = Field(alias="CLAMD_ADDRESS")
    definitions_max_age_hours: int = Field(alias="DEFINITIONS_MAX_AGE_HOURS", gt=0)
    scan_max_bytes: int = Field(alias="SCAN_MAX_BYTES", gt=0)
    ingest_bucket: str = Field(alias="INGEST_BUCKET", min_length=1)
    # A rescan scans the stored original of a READY file again (rescan.logic).
    clean_bucket: str = Field(alias="CLEAN_BUCKET", min_length=1)
    definitions_bucket: str | None = Field(default=None, alias="DEFINITIONS_BUCKET")
    scan_timeout_seconds: float = Field(default=240.0, alias="SCAN_TIMEOUT_SECONDS", gt=0)

    @field_validator("clamd_address")
    @classmethod
    def _check_address(cls, value: str) -> str:
        if value != EMBEDDED:
            ClamdAddress.parse(value)
        return value

    @model_validator(mode="after")
    def _embedded_needs_bucket(self) -> ScanSettings:
        if self.clamd_address == EMBEDDED and not self.definitions_bucket:
            raise ValueError("CLAMD_ADDRESS=embedded needs DEFINITIONS_BUCKET")
        return self


def _scan_timeout(settings: ScanSettings, context: Any) -> float:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return settings.scan_timeout_seconds
    left = remaining() / 1000 - _DEADLINE_MARGIN_SECONDS
    return max(1.0, min(settings.scan_timeout_seconds, left))


@instrumented("scan")
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    bind_file(event)
    settings = load_settings(ScanSettings)
    ref = FileRef.from_state(event)
    if ref.bucket not in (settings.ingest_bucket, settings.clean_bucket):
        raise ValueError(f"scan reads uploads and stored files only, not s3://{ref.bucket}")
    store = ObjectStore(client("s3"))
    policy = ScanPolicy(
        max_bytes=settings.scan_max_bytes,
        definitions_max_age=timedelta(hours=settings.definitions_max_age_hours),
    )
    try:
        address = settings.clamd_address
        if address == EMBEDDED:
            assert settings.definitions_bucket is not None  # guaranteed by the settings validator
            embedded = shared_embedded_clamd(store, settings.definitions_bucket, settings.scan_max_bytes)
            address = embedded.ensure_running()
        scanner = ClamdClient(address, timeout=_scan_timeout(settings, context))
        verdict = scan_object(ref, store, scanner, policy, now=datetime.now(UTC))
    except FilepipeError as failure:
        logger.warning("scan failed closed", extra={"errorCode": failure.code, "reason": failure.message})
        metrics.add_metric(name=f"{failure.code}Errors", unit=MetricUnit.Count, value=1)
        raise
    logger.info("scan finished", extra=verdict.as_payload())
    if verdict.verdict == "INFECTED":
        metrics.add_metric(name="FilesInfected", unit=MetricUnit.Count, value=1)
    return verdict.as_payload()
