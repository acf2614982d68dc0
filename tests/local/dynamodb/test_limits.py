"""DynamoDB's 400 KB item: a record that grows past it is refused as DynamoDB refuses it."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from common.model import FileRef, Status, ingest_key, new_file_id
from common.records import FileRecords, now_iso
from tests.stack import StackFixture

OWNER = "0f6c5e2a-7b1d-4c55-9d0e-2d7a1c9b8e41"


def new_record(records: FileRecords, **fields: object) -> FileRef:
    file_id = new_file_id()
    records.create(
        {
            "fileId": file_id,
            "ownerId": OWNER,
            "ownerEmail": "owner@example.com",
            "name": "report.pdf",
            "size": 1000,
            "contentType": "application/pdf",
            "status": "UPLOADING",
            "createdAt": now_iso(),
            "updatedAt": now_iso(),
            **fields,
        }
    )
    return FileRef("ingest", ingest_key(OWNER, file_id), "v1", OWNER, file_id)


def refusal(error: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, str]:
    response = error.value.response
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


def test_an_outcome_that_takes_the_record_past_400_kb_is_refused(stack: StackFixture) -> None:
    records = FileRecords(stack.client("dynamodb"), stack.physical("FilesTable"))
    ref = new_record(records)
    # The mutation: the metadata step's whole extracted text stored in the record, not a few facts.
    records.record_outcome(ref, Status.READY, {"text": "x" * 380 * 1024})
    with pytest.raises(ClientError) as refused:
        records.record_outcome(ref, Status.READY, {"text": "x" * 410 * 1024})
    assert refusal(refused) == (
        400,
        "ValidationException",
        "Item size to update has exceeded the maximum allowed size",
    )
    stored = records.get(OWNER, ref.file_id)
    assert stored is not None
    assert len(str(stored["text"])) == 380 * 1024  # the item is as it was


def test_a_new_record_over_400_kb_is_refused(stack: StackFixture) -> None:
    records = FileRecords(stack.client("dynamodb"), stack.physical("FilesTable"))
    with pytest.raises(ClientError) as refused:
        new_record(records, description="d" * 410 * 1024)
    assert refusal(refused) == (400, "ValidationException", "Item size has exceeded the maximum allowed size")
