"""`filepipe usage recount`: uncounted READY files are counted once, no others; a dry run changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from common.model import new_file_id
from common.records import FileRecords, now_iso
from common.usage import UsageLedger
from filepipe.ops.cli import main
from filepipe.ops.rescan import Clock
from filepipe.ops.target import FILES_TABLE_NAME
from filepipe.ops.usage import recount
from tests.stack import StackFixture

OWNER = "4f1c2d3e-0000-4000-8000-000000000001"
OTHER = "4f1c2d3e-0000-4000-8000-000000000002"


def _file(records: FileRecords, owner: str, size: int, status: str = "READY") -> str:
    file_id, now = new_file_id(), now_iso()
    records.create(
        {
            "fileId": file_id,
            "ownerId": owner,
            "name": "old.bin",
            "status": status,
            "size": size,
            "sourceVersion": "v1",
            "createdAt": now,
            "updatedAt": now,
        }
    )
    return file_id


def _adapters(stack: StackFixture) -> tuple[FileRecords, UsageLedger]:
    dynamodb, table = stack.client("dynamodb"), stack.physical("FilesTable")
    return FileRecords(dynamodb, table), UsageLedger(dynamodb, table)


def _run(stack: StackFixture, tmp_path: Path, *argv: str) -> int:
    clock = Clock(now=lambda: datetime.now(UTC), monotonic=lambda: 0.0, sleep=lambda _: None)
    return main(
        [
            "usage",
            "recount",
            *argv,
            "--state-dir",
            str(tmp_path),  # no local runtime there: the clients and the output below are the target
            "--output",
            f"{FILES_TABLE_NAME}={stack.physical('FilesTable')}",
        ],
        client_factory=stack.client,
        clock=clock,
    )


def test_files_stored_before_quotas_are_counted_once(
    stack: StackFixture, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records, ledger = _adapters(stack)
    _file(records, OWNER, 1_000)
    _file(records, OWNER, 250)
    _file(records, OTHER, 40)
    _file(records, OWNER, 9_999, status="REJECTED")
    counted_by_its_run = _file(records, OWNER, 5)
    assert ledger.store(OWNER, counted_by_its_run, 5)

    assert _run(stack, tmp_path, "--dry-run") == 0
    dry = capsys.readouterr().out
    assert "3 files (1290 bytes) of 2 owners would be counted." in dry
    assert "Dry run: nothing was changed." in dry
    assert ledger.usage(OWNER).stored_bytes == 5

    assert _run(stack, tmp_path) == 0
    done = capsys.readouterr().out
    assert "1 READY files were counted already." in done
    assert "3 files (1290 bytes) of 2 owners counted." in done
    assert f"  {OWNER}: 2 files, 1250 bytes" in done
    assert (ledger.usage(OWNER).stored_bytes, ledger.usage(OTHER).stored_bytes) == (1_255, 40)

    assert _run(stack, tmp_path) == 0
    assert "0 files (0 bytes) of 0 owners counted." in capsys.readouterr().out
    assert (ledger.usage(OWNER).stored_bytes, ledger.usage(OTHER).stored_bytes) == (1_255, 40)


def test_one_owner_only(stack: StackFixture, tmp_path: Path) -> None:
    records, ledger = _adapters(stack)
    _file(records, OWNER, 100)
    _file(records, OTHER, 7)

    assert _run(stack, tmp_path, "--owner", OTHER) == 0

    assert (ledger.usage(OWNER).stored_bytes, ledger.usage(OTHER).stored_bytes) == (0, 7)


class _QuarantinedMeanwhile(UsageLedger):
    """A rescan quarantines the file (giving back what it counted: nothing yet) just before it is counted."""

    def __init__(self, ledger: UsageLedger, records: FileRecords) -> None:
        self.__dict__.update(ledger.__dict__)
        self.records = records

    def store(self, owner_id: str, file_id: str, size: int) -> bool:
        self.records._call(
            "update_item",
            Key=self.records.key(owner_id, file_id),
            UpdateExpression="SET #status = :quarantined",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":quarantined": {"S": "QUARANTINED"}},
        )
        self.unstore(owner_id, file_id)
        return super().store(owner_id, file_id, size)


def test_a_file_quarantined_while_it_is_counted_does_not_stay_counted(stack: StackFixture) -> None:
    records, ledger = _adapters(stack)
    file_id = _file(records, OWNER, 300)

    found = recount(records, _QuarantinedMeanwhile(ledger, records), datetime.now(UTC))

    assert sum(found.counted_files.values()) == 0
    assert ledger.usage(OWNER).stored_bytes == 0
    record: dict[str, Any] | None = records.get(OWNER, file_id)
    assert record is not None
    assert "storedBytes" not in record
