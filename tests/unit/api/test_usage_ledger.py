"""The usage ledger under duplicates, replays and interleavings: every byte counted once, never below zero."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from common.errors import ServiceThrottled
from common.model import new_file_id
from common.quota import Hold
from common.records import FileRecords
from common.usage import UsageLedger
from tests.stack import StackFixture
from tests.unit.api.support import new_user

NOW = 1_900_000_000
LATER = NOW + 3600


@pytest.fixture
def ledger(api_stack: StackFixture) -> UsageLedger:
    return UsageLedger(api_stack.client("dynamodb"), api_stack.physical("FilesTable"))


@pytest.fixture
def records(api_stack: StackFixture) -> FileRecords:
    return FileRecords(api_stack.client("dynamodb"), api_stack.physical("FilesTable"))


def _file(records: FileRecords, owner: str, size: int) -> str:
    file_id = new_file_id()
    records.create({"fileId": file_id, "ownerId": owner, "size": size, "status": "UPLOADING"})
    return file_id


def _counts(ledger: UsageLedger, owner: str) -> tuple[int, int]:
    usage = ledger.usage(owner)
    return usage.stored_bytes, usage.reserved_bytes


def test_holds_racing_for_the_last_bytes_admit_exactly_what_fits(ledger: UsageLedger) -> None:
    owner = new_user()
    answers = [ledger.hold(owner, new_file_id(), 300, 1000, LATER, of_record=False) for _ in range(4)]

    assert answers == [Hold.HELD, Hold.HELD, Hold.HELD, Hold.OVER_QUOTA]
    assert _counts(ledger, owner) == (0, 900)
    assert ledger.hold(owner, new_file_id(), 100, 1000, LATER, of_record=False) is Hold.HELD  # to the byte
    assert ledger.hold(owner, new_file_id(), 1, 1000, LATER, of_record=False) is Hold.OVER_QUOTA


def test_a_repeated_hold_of_one_file_counts_once(ledger: UsageLedger, records: FileRecords) -> None:
    owner = new_user()
    file_id = _file(records, owner, 400)

    for _ in range(3):
        assert ledger.hold(owner, file_id, 400, 1000, LATER, of_record=True) is Hold.HELD

    assert _counts(ledger, owner) == (0, 400)


def test_duplicate_stores_and_late_releases_count_nothing_twice(
    ledger: UsageLedger, records: FileRecords
) -> None:
    owner = new_user()
    file_id = _file(records, owner, 400)
    ledger.hold(owner, file_id, 400, 1000, LATER, of_record=True)

    assert ledger.store(owner, file_id, 380)  # the real size, a little under the declared one
    assert not ledger.store(owner, file_id, 380)
    assert ledger.release(owner, file_id) == 0  # a late duplicate of a REJECTED outcome
    assert ledger.hold(owner, file_id, 400, 1000, LATER, of_record=True) is Hold.NOT_NEEDED  # a replay
    assert _counts(ledger, owner) == (380, 0)

    assert ledger.unstore(owner, file_id) == 380
    assert ledger.unstore(owner, file_id) == 0
    assert _counts(ledger, owner) == (0, 0)


def test_a_hold_given_back_before_ready_is_counted_straight_as_stored(
    ledger: UsageLedger, records: FileRecords
) -> None:
    owner = new_user()
    file_id = _file(records, owner, 400)
    ledger.hold(owner, file_id, 400, 1000, NOW - 1, of_record=True)
    assert ledger.release_expired(owner, NOW) == 400

    assert ledger.store(owner, file_id, 400)
    assert _counts(ledger, owner) == (400, 0)


def test_only_expired_holds_are_given_back_and_a_kept_one_outlives_its_first_expiry(
    ledger: UsageLedger,
) -> None:
    owner = new_user()
    expired, kept, current = new_file_id(), new_file_id(), new_file_id()
    for file_id in (expired, kept):
        ledger.hold(owner, file_id, 100, 1000, NOW - 1, of_record=False)
    ledger.hold(owner, current, 100, 1000, LATER, of_record=False)
    assert ledger.extend(owner, kept, LATER)  # the validate step of its run
    assert not ledger.extend(owner, new_file_id(), LATER)

    assert ledger.release_expired(owner, NOW) == 100
    assert ledger.release_expired(owner, NOW) == 0
    assert _counts(ledger, owner) == (0, 200)
    assert ledger.release(owner, kept, expired_at=NOW) == 0  # no longer expired
    assert ledger.release(owner, kept) == 100


def test_a_deleted_record_takes_no_hold_and_is_never_stored(
    ledger: UsageLedger, records: FileRecords
) -> None:
    owner = new_user()
    file_id = _file(records, owner, 100)
    records.delete(owner, file_id)

    assert ledger.hold(owner, file_id, 100, 1000, LATER, of_record=True) is Hold.NOT_NEEDED
    assert not ledger.store(owner, file_id, 100)
    assert _counts(ledger, owner) == (0, 0)


def test_a_file_bigger_than_the_quota_is_refused_without_a_write(ledger: UsageLedger) -> None:
    owner = new_user()

    assert ledger.hold(owner, new_file_id(), 1001, 1000, LATER, of_record=False) is Hold.OVER_QUOTA
    assert _counts(ledger, owner) == (0, 0)


def test_the_hourly_counter_stops_at_its_limit(ledger: UsageLedger) -> None:
    owner = new_user()

    assert [ledger.count_upload(owner, NOW, NOW + 3600, 2) for _ in range(3)] == [True, True, False]
    assert ledger.uploads_counted(owner, NOW) == 2
    assert ledger.count_upload(owner, NOW + 3600, NOW + 7200, 2)


def test_a_transaction_conflict_is_throttling_the_caller_retries(
    ledger: UsageLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    def conflict(**_: Any) -> Any:
        raise ClientError(
            {
                "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}],
            },
            "TransactWriteItems",
        )

    monkeypatch.setattr(ledger._db, "transact_write_items", conflict)

    with pytest.raises(ServiceThrottled):
        ledger.hold(new_user(), new_file_id(), 1, 1000, LATER, of_record=False)
