"""The rescan's decisions: what input it refuses, and how a stored file found infected is moved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from common.errors import RescanInvalid
from common.model import clean_key, new_file_id, quarantine_key
from common.records import FileRecords, now_iso
from common.shares import ShareRecords
from common.storage import ObjectStore
from common.usage import UsageLedger
from rescan.logic import (
    MAX_LIMIT,
    Buckets,
    StoredFile,
    decode_cursor,
    encode_cursor,
    list_page,
    parse_run,
    quarantine_stored,
)
from scan.rescans import SCHEDULED_LIMIT
from tests.stack import StackFixture

OWNER = "0f6c5e2a-7b1d-4c55-9d0e-2d7a1c9b8e41"
SIGNATURE = "Eicar-Signature"


def _run(**changes: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    run = {
        "window": {"from": (now - timedelta(days=1)).isoformat(), "to": now.isoformat()},
        "limit": 10,
        "dryRun": False,
        "cursor": None,
        "reason": "operator",
    }
    return {**run, **changes}


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": MAX_LIMIT + 1}, "limit"),
        ({"window": {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}}, "before"),
        ({"window": {"from": "2026-01-01T00:00:00", "to": "2026-01-02T00:00:00"}}, "time zone"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": encode_cursor({"pk": "x"})}, "cursor"),
        ({"reason": "because"}, "reason"),
        ({"extra": True}, "extra"),
    ],
)
def test_input_the_workflow_refuses_is_named(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(RescanInvalid, match=reason):
        parse_run(_run(**changes))


def test_a_cursor_reads_back_as_the_table_key_it_encodes() -> None:
    key = {"pk": {"S": "OWNER#a"}, "sk": {"S": "FILE#b"}}
    assert decode_cursor(encode_cursor(key)) == key


def test_a_scheduled_rescan_fits_one_execution() -> None:
    assert SCHEDULED_LIMIT <= MAX_LIMIT


class _Records:
    """Table pages of a fixed size, each read counted."""

    def __init__(self, ready: int) -> None:
        self.ready = [
            {"ownerId": OWNER, "fileId": new_file_id(), "sourceVersion": "v1", "size": 5}
            for _ in range(ready)
        ]
        self.reads: list[int] = []

    def scan_ready(
        self, updated_from: str, updated_to: str, limit: int, start_key: Any
    ) -> tuple[list[dict[str, Any]], int, dict[str, Any] | None]:
        self.reads.append(limit)
        start = int(start_key["sk"]["S"]) if start_key else 0
        page = self.ready[start : start + limit]
        end = start + len(page)
        last = {"pk": {"S": "x"}, "sk": {"S": str(end)}} if end < len(self.ready) else None
        return page, len(page), last


def test_listing_stops_at_the_limit_and_hands_back_a_cursor() -> None:
    records = _Records(ready=5)
    state: dict[str, Any] = _run(limit=3)
    pages = []
    while True:
        state = list_page(state, records)
        if state["done"]:
            break
        pages.append(len(state["page"]))
        state["results"] = [{"outcome": "clean", "fileId": f["fileId"]} for f in state["page"]]
    report = state["report"]
    assert sum(pages) == 3
    assert report["totals"]["clean"] == 3
    assert report["complete"] is False
    assert report["cursor"]
    assert records.reads[0] == 3  # never reads past what the limit lets it scan
    # The next execution starts where this one stopped and covers the rest.
    state = _run(limit=3, cursor=report["cursor"])
    listed = 0
    while not (state := list_page(state, records))["done"]:
        listed += len(state["page"])
    assert listed == 2
    assert state["report"]["complete"] is True


def _ready_file(stack: StackFixture, data: bytes = b"stored") -> tuple[StoredFile, FileRecords, ShareRecords]:
    dynamodb = stack.client("dynamodb")
    table = stack.physical("FilesTable")
    records, shares = FileRecords(dynamodb, table), ShareRecords(dynamodb, table)
    file = StoredFile(OWNER, new_file_id(), "upload-v1")
    now = now_iso()
    records.create(
        {
            "fileId": file.file_id,
            "ownerId": OWNER,
            "name": "a.txt",
            "status": "READY",
            "sourceVersion": file.source_version,
            "cleanKey": clean_key(OWNER, file.file_id),
            "createdAt": now,
            "updatedAt": now,
        }
    )
    stack.client("s3").put_object(
        Bucket=stack.physical("FilesBucket"),
        Key=clean_key(OWNER, file.file_id),
        Body=data,
        Metadata={"source-version": file.source_version},
    )
    shares.create(
        {"shareId": f"s-{file.file_id}", "fileId": file.file_id, "ownerId": OWNER, "createdAt": now}
    )
    return file, records, shares


def _buckets(stack: StackFixture) -> Buckets:
    return Buckets(
        stack.physical("IngestBucket"), stack.physical("FilesBucket"), stack.physical("QuarantineBucket")
    )


def test_a_file_deleted_before_its_quarantine_is_left_alone(stack: StackFixture) -> None:
    file, records, shares = _ready_file(stack)
    records.delete(OWNER, file.file_id)
    store = ObjectStore(stack.client("s3"))

    usage = UsageLedger(stack.client("dynamodb"), stack.physical("FilesTable"))
    moved = quarantine_stored(file, SIGNATURE, records, shares, usage, store, _buckets(stack), now_iso())

    assert moved is False
    assert not store.exists(stack.physical("QuarantineBucket"), quarantine_key(OWNER, file.file_id))


class _FailingOnce(ShareRecords):
    def __init__(self, shares: ShareRecords) -> None:
        self.__dict__.update(shares.__dict__)
        self.failed = False

    def delete(self, share_id: str, owner_id: str) -> bool:
        if not self.failed:
            self.failed = True
            raise RuntimeError("injected: the function stopped here")
        return super().delete(share_id, owner_id)


def test_a_quarantine_retried_after_a_crash_finishes_the_move(stack: StackFixture) -> None:
    file, records, shares = _ready_file(stack)
    store = ObjectStore(stack.client("s3"))
    buckets = _buckets(stack)
    failing = _FailingOnce(shares)
    usage = UsageLedger(stack.client("dynamodb"), stack.physical("FilesTable"))
    assert usage.store(OWNER, file.file_id, len(b"stored"))
    assert usage.usage(OWNER).stored_bytes == len(b"stored")

    with pytest.raises(RuntimeError, match="injected"):
        quarantine_stored(file, SIGNATURE, records, failing, usage, store, buckets, now_iso())
    record = records.get(OWNER, file.file_id)
    assert record is not None  # unreachable from here on
    assert record["status"] == "QUARANTINED"

    assert quarantine_stored(file, SIGNATURE, records, failing, usage, store, buckets, now_iso()) is True
    # Its bytes stopped counting against the owner's quota once, though two attempts got that far.
    assert usage.usage(OWNER).stored_bytes == 0
    assert shares.list_for_file(file.file_id) == []
    assert not store.exists(buckets.clean, clean_key(OWNER, file.file_id))
    assert store.read_all(buckets.quarantine, quarantine_key(OWNER, file.file_id)) == b"stored"
