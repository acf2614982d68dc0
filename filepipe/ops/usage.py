"""`filepipe usage recount`: count READY files no owner's usage counts yet (stored before quotas, say)."""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

# Items one Scan request reads; each page's cost is known in advance, as for rescans.
PAGE_ITEMS = 500
# Below every ISO 8601 time a record can carry: the scan covers READY records of any age.
_LOWEST_TIME = "0000"
MAX_LISTED_OWNERS = 50
# The file record's mark of the bytes its owner's usage counts (common.usage.STORED_MARK).
STORED_MARK = "storedBytes"

DESCRIPTION = (
    "Count every READY file that its owner's usage does not count yet (files stored before quotas were "
    "turned on, or one whose count failed after all its retries). Each file is counted at most once, "
    "whatever else runs at the same time: counting marks its record in the same transaction. Reads the "
    "whole files table with Scan, PAGE_ITEMS items a request."
).replace("PAGE_ITEMS", str(PAGE_ITEMS))


class ReadyRecords(Protocol):
    def scan_ready(
        self, updated_from: str, updated_to: str, limit: int, start_key: Mapping[str, Any] | None
    ) -> tuple[list[dict[str, Any]], int, dict[str, Any] | None]: ...

    def get(self, owner_id: str, file_id: str) -> dict[str, Any] | None: ...


class Ledger(Protocol):
    def store(self, owner_id: str, file_id: str, size: int) -> bool: ...

    def unstore(self, owner_id: str, file_id: str) -> int: ...


@dataclass
class Recount:
    """What a recount found: files and bytes newly counted per owner, and the files already counted."""

    examined: int = 0
    already_counted: int = 0
    counted_files: Counter[str] = field(default_factory=Counter)
    counted_bytes: Counter[str] = field(default_factory=Counter)

    def add(self, owner_id: str, size: int) -> None:
        self.counted_files[owner_id] += 1
        self.counted_bytes[owner_id] += size


def _ready_records(records: ReadyRecords, until: str) -> Iterator[tuple[list[dict[str, Any]], int]]:
    start_key: Mapping[str, Any] | None = None
    while True:
        page, examined, start_key = records.scan_ready(_LOWEST_TIME, until, PAGE_ITEMS, start_key)
        yield page, examined
        if not start_key:
            return


def recount(
    records: ReadyRecords,
    ledger: Ledger,
    now: datetime,
    *,
    dry_run: bool = False,
    owner_id: str | None = None,
) -> Recount:
    """Count each READY file whose record carries no usage mark; with ``dry_run``, only say which."""
    # A day past now: a record written by a function whose clock runs ahead of this machine's is included.
    until = (now.astimezone(UTC) + timedelta(days=1)).isoformat()
    found = Recount()
    for page, examined in _ready_records(records, until):
        found.examined += examined
        for record in page:
            owner, file_id = str(record["ownerId"]), str(record["fileId"])
            if owner_id and owner != owner_id:
                continue
            if record.get(STORED_MARK) is not None:
                found.already_counted += 1
                continue
            size = int(record["size"])
            if dry_run:
                found.add(owner, size)
            elif ledger.store(owner, file_id, size):
                # A rescan may have quarantined the file since this page was read, and given back its
                # bytes before they were counted here: counted now, they must go again.
                latest = records.get(owner, file_id)
                if latest is None or latest.get("status") != "READY":
                    ledger.unstore(owner, file_id)
                else:
                    found.add(owner, size)
            else:
                found.already_counted += 1  # counted meanwhile by its run, or deleted
    return found


def report(found: Recount, *, dry_run: bool) -> str:
    verb = "would be counted" if dry_run else "counted"
    files, size = sum(found.counted_files.values()), sum(found.counted_bytes.values())
    lines = [
        f"{found.examined} items read; {found.already_counted} READY files were counted already.",
        f"{files} files ({size} bytes) of {len(found.counted_files)} owners {verb}.",
    ]
    for owner, owner_bytes in found.counted_bytes.most_common(MAX_LISTED_OWNERS):
        lines.append(f"  {owner}: {found.counted_files[owner]} files, {owner_bytes} bytes")
    if len(found.counted_bytes) > MAX_LISTED_OWNERS:
        lines.append(f"  ... and {len(found.counted_bytes) - MAX_LISTED_OWNERS} more owners")
    if dry_run:
        lines.append("Dry run: nothing was changed.")
    return "\n".join(lines)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    usage: argparse.ArgumentParser = subparsers.add_parser(
        "usage", help="owners' storage usage: count files it misses", description="Owners' storage usage."
    )
    steps = usage.add_subparsers(dest="usage_command", required=True)
    parser: argparse.ArgumentParser = steps.add_parser(
        "recount", help="count READY files no owner's usage counts yet", description=DESCRIPTION
    )
    parser.add_argument("--dry-run", action="store_true", help="say what would be counted; change nothing")
    parser.add_argument("--owner", metavar="USER_ID", help="only this owner's files (their Cognito sub)")
    return parser
