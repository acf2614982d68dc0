"""Lambda handler of the RescanFiles workflow's steps: wires DynamoDB and S3 to ``rescan.logic``."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from common.aws import client
from common.model import FileRef
from common.observability import instrumented, logger
from common.records import FileRecords, now_iso
from common.settings import EnvSettings, load_settings
from common.shares import ShareRecords
from common.storage import ObjectStore
from common.usage import UsageLedger
from rescan.logic import Buckets, StoredFile, list_page, locate, quarantine_stored, stage, unstage


class RescanSettings(EnvSettings):
    files_table: str = Field(alias="FILES_TABLE", min_length=1)
    ingest_bucket: str = Field(alias="INGEST_BUCKET", min_length=1)
    clean_bucket: str = Field(alias="CLEAN_BUCKET", min_length=1)
    quarantine_bucket: str = Field(alias="QUARANTINE_BUCKET", min_length=1)


@instrumented("rescan")
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = load_settings(RescanSettings)
    action = event.get("action")
    if action == "list":
        page = list_page(event["state"], FileRecords(client("dynamodb"), settings.files_table))
        logger.info("rescan page", extra={"done": page["done"], "files": len(page.get("page", []))})
        return page
    file = StoredFile.from_item(event["file"])
    logger.append_keys(fileId=file.file_id, executionName=event.get("executionName"))
    store = ObjectStore(client("s3"))
    if action == "locate":
        ref, _ = locate(file, store, settings.clean_bucket)
        return ref.to_state()
    if action == "stage":
        return stage(file, store, settings.clean_bucket, settings.ingest_bucket).to_state()
    if action == "unstage":
        unstage(FileRef.from_state({"file": event["staged"]}), store, settings.ingest_bucket)
        return {}
    if action == "quarantine":
        signature = str(event["scan"].get("signature") or "unknown")
        dynamodb = client("dynamodb")
        moved = quarantine_stored(
            file,
            signature,
            FileRecords(dynamodb, settings.files_table),
            ShareRecords(dynamodb, settings.files_table),
            UsageLedger(dynamodb, settings.files_table),
            store,
            Buckets(settings.ingest_bucket, settings.clean_bucket, settings.quarantine_bucket),
            now_iso(),
        )
        if moved:
            logger.warning("stored file found infected: quarantined", extra={"signature": signature})
        else:
            logger.info("stored file found infected, but it is READY no more: left as it is")
        return {"moved": moved, "file": file.upload_ref(settings.ingest_bucket).to_state()}
    raise ValueError(f"unknown rescan action {action!r}")
