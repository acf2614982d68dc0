"""The upload-issuing path, built alike by both API functions: owners' uploads and guests' by request link."""

from __future__ import annotations

from api.clock import Clock
from api.ingest import IngestStore
from api.quotas import QuotaRules, Quotas
from api.settings import UploadApiSettings
from api.uploads import UploadRules, Uploads
from common.aws import client


def quota_service(settings: UploadApiSettings, clock: Clock) -> Quotas:
    """Each owner's limits over the files table; uploads, deletes and the usage route share them."""
    from common.usage import UsageLedger  # deferred: it imports boto3, which costs every cold start

    return Quotas(
        UsageLedger(client("dynamodb"), settings.files_table),
        QuotaRules(settings.user_storage_quota_bytes, settings.user_uploads_per_hour),
        clock,
    )


def upload_service(settings: UploadApiSettings, clock: Clock) -> Uploads:
    """Uploads over the cached clients; a guest's upload goes through this very path, as its link's owner."""
    from common.records import FileRecords  # deferred: it imports boto3, which costs every cold start

    records = FileRecords(client("dynamodb"), settings.files_table)
    ingest = IngestStore(client("s3"), settings.ingest_bucket)
    rules = UploadRules(settings.max_file_bytes, settings.single_part_limit_bytes, settings.allowed_types)
    return Uploads(records, ingest, rules, clock, quota_service(settings, clock))
