"""Environment settings of the two API functions, validated on the first request of a cold start."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field

from common.filetypes import parse_allowed
from common.settings import EnvSettings

MIN_MULTIPART_BYTES = 5 * 1024 * 1024  # S3's smallest part: below it multipart cannot work


class PublicApiSettings(EnvSettings):
    """What the public share function needs: the table and the clean bucket, nothing else."""

    files_table: str = Field(alias="FILES_TABLE", min_length=1)
    clean_bucket: str = Field(alias="CLEAN_BUCKET", min_length=1)


class UploadApiSettings(PublicApiSettings):
    """Both API functions issue uploads (owners', and guests' through request links): where they go and
    what they may be."""

    ingest_bucket: str = Field(alias="INGEST_BUCKET", min_length=1)
    max_file_bytes: int = Field(alias="MAX_FILE_BYTES", ge=1)
    single_part_limit_bytes: int = Field(alias="SINGLE_PART_LIMIT_BYTES", ge=MIN_MULTIPART_BYTES)
    allowed_types: Annotated[frozenset[str], BeforeValidator(parse_allowed)] = Field(alias="ALLOWED_TYPES")
    # Per owner: a request link's guest uploads count against its owner's.
    user_storage_quota_bytes: int = Field(alias="USER_STORAGE_QUOTA_BYTES", ge=1)
    user_uploads_per_hour: int = Field(alias="USER_UPLOADS_PER_HOUR", ge=1)


class ApiSettings(UploadApiSettings):
    """The authenticated API also says where share and request links point."""

    web_url: str = Field(alias="WEB_URL", pattern=r"^https?://[^/\s]+(/\S*)?$")


class ShareApiSettings(UploadApiSettings):
    """The public share function also announces downloads, on the event bus the notify function reads."""

    event_bus_name: str = Field(alias="EVENT_BUS_NAME", min_length=1)
