"""Rescans of stored files: which READY files a run covers, and what becomes of one found infected later.

The RescanFiles workflow calls ``list_page`` in a loop; between two calls it scans the page's files (a Map)
and passes their outcomes back, which the next call tallies. One execution scans at most ``MAX_LIMIT``
files: a Standard execution's history holds 25,000 events (Step Functions quotas), and the costliest path
of one file (GuardDuty mode, found infected, owner told) takes about 40 of them. A run that stops at its
limit hands back a cursor that a new execution continues from.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from common.errors import RescanInvalid, StoredFileChanged
from common.model import FileRef, clean_key, clean_prefix, ingest_key, quarantine_key, rescan_key
from common.storage import ObjectInfo, ObjectStore

MAX_LIMIT = 500
# Table items read per list call; bounds one call's cost and keeps the page far below 256 KiB of state.
PAGE_SIZE = 100
# An execution's output lists this many quarantined files and failures at most; the totals count them all.
MAX_LISTED = 100
SOURCE_VERSION = "source-version"
FOUND_ON_RESCAN = "MALWARE_FOUND_ON_RESCAN"


# ------------------------------------------------------------------ the run's input and progress
class Window(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("window times need a time zone (e.g. 2026-01-01T00:00:00Z)")
        if self.start >= self.end:
            raise ValueError("window 'from' must be before 'to'")
        return self


class RescanRun(BaseModel):
    """What an execution was started with (the contract `filepipe rescan` and the schedule start it by)."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    window: Window
    limit: int = Field(ge=1, le=MAX_LIMIT)
    dry_run: bool = Field(alias="dryRun")
    cursor: str | None = None
    reason: Literal["operator", "definitions-update"]

    @field_validator("cursor")
    @classmethod
    def _readable_cursor(cls, value: str | None) -> str | None:
        if value is not None:
            decode_cursor(value)
        return value

    def as_state(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class Totals(BaseModel):
    examined: int = 0
    listed: int = 0
    bytes: int = 0
    clean: int = 0
    infected: int = 0
    failed: int = 0
    skipped: int = 0


class Progress(BaseModel):
    totals: Totals = Field(default_factory=Totals)
    quarantined: list[dict[str, str]] = Field(default_factory=list)
    failures: list[dict[str, str]] = Field(default_factory=list)
    cursor: str | None = None
    started: bool = False


def encode_cursor(key: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode()


def decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ValueError("cursor is not one a rescan gave out") from None
    if not isinstance(key, dict) or set(key) != {"pk", "sk"}:
        raise ValueError("cursor is not one a rescan gave out")
    return key


# ------------------------------------------------------------------ listing
class ReadyRecords(Protocol):
    def scan_ready(
        self, updated_from: str, updated_to: str, limit: int, start_key: Mapping[str, Any] | None
    ) -> tuple[list[dict[str, Any]], int, dict[str, Any] | None]: ...


def parse_run(state: Mapping[str, Any]) -> tuple[RescanRun, Progress]:
    try:
        run = RescanRun.model_validate(state.get("run", state))
        progress = Progress.model_validate(state.get("progress") or {})
    except ValidationError as error:
        reasons = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'input'}: {problem['msg']}"
            for problem in error.errors(include_url=False, include_input=False)[:5]
        )
        raise RescanInvalid(f"rescan input refused: {reasons}") from None
    return run, progress


def tally(progress: Progress, results: list[Mapping[str, Any]]) -> None:
    """Count the outcomes of the page just scanned (the Map's results)."""
    for result in results:
        outcome = result.get("outcome")
        who = {"fileId": str(result.get("fileId", "")), "ownerId": str(result.get("ownerId", ""))}
        if outcome == "clean":
            progress.totals.clean += 1
        elif outcome == "infected":
            progress.totals.infected += 1
            if len(progress.quarantined) < MAX_LISTED:
                progress.quarantined.append({**who, "signature": str(result.get("signature") or "")})
        elif outcome == "skipped":
            progress.totals.skipped += 1
        else:
            progress.totals.failed += 1
            if len(progress.failures) < MAX_LISTED:
                progress.failures.append({**who, "error": str(result.get("error") or "unknown")})


def _page_item(record: Mapping[str, Any]) -> dict[str, Any]:
    """What a Map iteration needs of a file: a reference, never its data."""
    return {
        "ownerId": record["ownerId"],
        "fileId": record["fileId"],
        "sourceVersion": record["sourceVersion"],
        "size": int(record.get("size", 0)),
    }


def list_page(state: Mapping[str, Any], records: ReadyRecords) -> dict[str, Any]:
    """The next page of files to scan, with the progress so far; ``done`` and a report at the end."""
    run, progress = parse_run(state)
    tally(progress, list(state.get("results") or []))
    if not progress.started:
        progress.started = True
        progress.cursor = run.cursor
    elif progress.cursor is None:
        return _finished(run, progress)
    remaining = run.limit - progress.totals.listed
    if remaining <= 0:
        return _finished(run, progress)
    start_key = decode_cursor(progress.cursor) if progress.cursor else None
    found, examined, last = records.scan_ready(
        _record_time(run.window.start), _record_time(run.window.end), min(PAGE_SIZE, remaining), start_key
    )
    progress.totals.examined += examined
    progress.totals.listed += len(found)
    progress.totals.bytes += sum(int(record.get("size", 0)) for record in found)
    progress.cursor = encode_cursor(last) if last else None
    page = [] if run.dry_run else [_page_item(record) for record in found]
    return {
        "run": run.as_state(),
        "progress": progress.model_dump(mode="json"),
        "page": page,
        "scanPage": bool(page),
        "done": False,
    }


def _record_time(moment: datetime) -> str:
    """Records keep UTC times as ISO 8601 with milliseconds and Z, which sort as text."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _finished(run: RescanRun, progress: Progress) -> dict[str, Any]:
    report = {
        "window": run.as_state()["window"],
        "dryRun": run.dry_run,
        "reason": run.reason,
        "totals": progress.totals.model_dump(),
        "quarantined": progress.quarantined,
        "failures": progress.failures,
        "cursor": progress.cursor,
        "complete": progress.cursor is None,
    }
    return {"run": run.as_state(), "done": True, "report": report}


# ------------------------------------------------------------------ one file
@dataclass(frozen=True)
class StoredFile:
    """One file of a page: whose, and the upload version its record and stored original come from."""

    owner_id: str
    file_id: str
    source_version: str

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> StoredFile:
        return cls(str(item["ownerId"]), str(item["fileId"]), str(item["sourceVersion"]))

    def upload_ref(self, ingest_bucket: str) -> FileRef:
        """The record's own reference: the upload version the record and its notifications are keyed on."""
        key = ingest_key(self.owner_id, self.file_id)
        return FileRef(ingest_bucket, key, self.source_version, self.owner_id, self.file_id)


def locate(file: StoredFile, store: ObjectStore, clean_bucket: str) -> tuple[FileRef, ObjectInfo]:
    """The stored original's current version, checked to be the promoted copy of the record's upload."""
    key = clean_key(file.owner_id, file.file_id)
    info = store.head(clean_bucket, key)
    if info.metadata.get(SOURCE_VERSION) != file.source_version:
        raise StoredFileChanged(
            f"file {file.file_id}: the stored original is not the copy of upload {file.source_version}"
        )
    version = info.version or "null"
    return FileRef(clean_bucket, key, version, file.owner_id, file.file_id), info


def stage(file: StoredFile, store: ObjectStore, clean_bucket: str, ingest_bucket: str) -> FileRef:
    """A copy of the stored original where GuardDuty's plan scans it; its version is the one awaited."""
    source, info = locate(file, store, clean_bucket)
    key = rescan_key(file.owner_id, file.file_id)
    version = store.copy(
        source.bucket,
        source.key,
        source.version,
        info.size,
        ingest_bucket,
        key,
        "application/octet-stream",
        {SOURCE_VERSION: file.source_version},
    )
    return FileRef(ingest_bucket, key, version or "null", file.owner_id, file.file_id)


def unstage(staged: FileRef, store: ObjectStore, ingest_bucket: str) -> None:
    if staged.bucket != ingest_bucket or staged.key != rescan_key(staged.owner_id, staged.file_id):
        raise ValueError(f"not a rescan copy: s3://{staged.bucket}/{staged.key}")
    store.delete(staged.bucket, staged.key, staged.version)


@dataclass(frozen=True)
class Buckets:
    ingest: str
    clean: str
    quarantine: str


class QuarantineRecords(Protocol):
    def get(self, owner_id: str, file_id: str) -> dict[str, Any] | None: ...

    def quarantine_ready(self, ref: FileRef, fields: Mapping[str, Any]) -> bool: ...


class FileShares(Protocol):
    def forget_file(self, owner_id: str, file_id: str) -> None: ...


class StoredUsage(Protocol):
    def unstore(self, owner_id: str, file_id: str) -> int: ...


def _quarantined_by_rescan(record: Mapping[str, Any] | None, file: StoredFile) -> bool:
    return (
        record is not None
        and record.get("status") == "QUARANTINED"
        and record.get("sourceVersion") == file.source_version
        and (record.get("error") or {}).get("code") == FOUND_ON_RESCAN
    )


def quarantine_stored(
    file: StoredFile,
    signature: str,
    records: QuarantineRecords,
    shares: FileShares,
    usage: StoredUsage,
    store: ObjectStore,
    buckets: Buckets,
    rescanned_at: str,
) -> bool:
    """Move a READY file found infected to quarantine; False when it is READY no more (deleted, replaced).

    Order keeps the file whole and unreachable: the copy into quarantine first, then the record (from here
    on the API neither presigns nor shares it), then its shares and served copies. A retry after any step
    finishes the rest.
    """
    record = records.get(file.owner_id, file.file_id)
    if not _quarantined_by_rescan(record, file):
        if record is None or (record.get("status"), record.get("sourceVersion")) != (
            "READY",
            file.source_version,
        ):
            return False
        source, info = locate(file, store, buckets.clean)
        store.copy(
            source.bucket,
            source.key,
            source.version,
            info.size,
            buckets.quarantine,
            quarantine_key(file.owner_id, file.file_id),
            "application/octet-stream",
            {SOURCE_VERSION: file.source_version, "signature": signature[:1024]},
        )
        fields = {
            "error": {"code": FOUND_ON_RESCAN, "message": f"Malware detected on a later scan: {signature}"},
            "quarantineKey": quarantine_key(file.owner_id, file.file_id),
            "rescannedAt": rescanned_at,
        }
        moved = records.quarantine_ready(file.upload_ref(buckets.ingest), fields)
        # Lost to a concurrent write: either an earlier attempt of this step (carry on) or a change (stop).
        if not moved and not _quarantined_by_rescan(records.get(file.owner_id, file.file_id), file):
            return False
    # A quarantined file counts against no quota; released once, whichever attempt gets here.
    usage.unstore(file.owner_id, file.file_id)
    # As when the owner deletes it: links holding only this file go, links holding others keep those.
    shares.forget_file(file.owner_id, file.file_id)
    store.delete_prefix(buckets.clean, clean_prefix(file.owner_id, file.file_id))
    return True
