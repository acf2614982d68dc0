"""The storage quota in ProcessUpload: validate holds an upload's bytes for its run, or rejects the file.

Each test runs with each Scanner. An upload URL can be used until it expires, and an upload's hold can
expire or be given back (a FAILED run) before its object is processed: validate decides again.
"""

from __future__ import annotations

import time

from common.quota import Hold
from common.usage import UsageLedger
from filepipe.clamd import eicar_bytes
from tests.workflow.conftest import PipelineFactory
from tests.workflow.harness import OWNER, Pipeline, crash

QUOTA = 4096
TEXT = b"quarterly numbers, all fine\n" * 50  # 1,400 bytes of plain text


def _ledger(pipeline: Pipeline) -> UsageLedger:
    return UsageLedger(pipeline.stack.client("dynamodb"), pipeline.stack.physical("FilesTable"))


def _holds(pipeline: Pipeline) -> list[str]:
    return [
        item["sk"]["S"]
        for item in pipeline.stack.client("dynamodb").scan(TableName=pipeline.stack.physical("FilesTable"))[
            "Items"
        ]
        if item["sk"]["S"].startswith("HOLD#")
    ]


def test_a_file_that_no_longer_fits_is_rejected_by_validate_and_kept(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline(UserStorageQuotaBytes=str(QUOTA))
    ledger = _ledger(pipeline)
    for name in ("a.txt", "b.txt"):
        pipeline.process(TEXT, name=name, declared_type="text/plain")
    assert ledger.usage(OWNER).stored_bytes == 2 * len(TEXT)

    # Uploaded through a URL whose hold is gone: the third copy would take the owner over 4,096 bytes.
    ref, execution = pipeline.process(TEXT, name="c.txt", declared_type="text/plain")

    assert execution["status"] == "SUCCEEDED"  # a rejection is a successful outcome of the workflow
    record = pipeline.record(ref)
    assert record["status"] == "REJECTED"
    assert record["error"]["code"] == "QUOTA_EXCEEDED"
    assert "storedBytes" not in record
    assert pipeline.router.calls[pipeline.scan_function] == 2  # the third was never scanned
    assert pipeline.ingest_versions(ref) == [ref.version]  # the original stays where it landed
    assert pipeline.keys(pipeline.clean, f"files/{ref.owner_id}/{ref.file_id}/") == []
    assert len(pipeline.sent_emails()) == 3
    usage = ledger.usage(OWNER)
    assert (usage.stored_bytes, usage.reserved_bytes) == (2 * len(TEXT), 0)
    assert _holds(pipeline) == []


def test_the_hold_taken_for_the_url_carries_the_file_to_ready_even_at_a_full_quota(
    make_pipeline: PipelineFactory,
) -> None:
    pipeline = make_pipeline(UserStorageQuotaBytes=str(len(TEXT)))
    ledger = _ledger(pipeline)
    ref = pipeline.upload(TEXT, name="a.txt", declared_type="text/plain")
    # What POST /uploads did: the declared size held, the quota now full.
    assert ledger.hold(OWNER, ref.file_id, len(TEXT), len(TEXT), int(time.time()) + 60, of_record=True) == (
        Hold.HELD
    )

    assert pipeline.start(pipeline.queued_start_messages()) == {"batchItemFailures": []}
    execution = pipeline.wait(ref.file_id)

    assert execution["status"] == "SUCCEEDED"
    record = pipeline.record(ref)
    assert record["status"] == "READY"
    assert record["storedBytes"] == len(TEXT)
    usage = ledger.usage(OWNER)
    assert (usage.stored_bytes, usage.reserved_bytes) == (len(TEXT), 0)
    assert _holds(pipeline) == []


def test_a_quarantined_upload_gives_its_hold_back(pipeline: Pipeline) -> None:
    ledger = _ledger(pipeline)

    ref, execution = pipeline.process(eicar_bytes(), name="invoice.txt", declared_type="text/plain")

    assert execution["status"] == "SUCCEEDED"
    assert pipeline.record(ref)["status"] == "QUARANTINED"
    usage = ledger.usage(OWNER)
    assert (usage.stored_bytes, usage.reserved_bytes) == (0, 0)
    assert ledger.release(OWNER, ref.file_id) == 0  # nothing left to give back
    assert _holds(pipeline) == []


def test_the_same_event_twice_and_a_replay_count_the_file_once(pipeline: Pipeline) -> None:
    ledger = _ledger(pipeline)
    ref = pipeline.upload(TEXT, name="a.txt", declared_type="text/plain")
    [message] = pipeline.queued_start_messages()

    assert pipeline.start([message, dict(message, MessageId="duplicate-delivery")]) == {
        "batchItemFailures": []
    }
    first = pipeline.wait(ref.file_id)
    pipeline.sfn.start_execution(
        stateMachineArn=pipeline.state_machine, name=f"{ref.file_id}-replay", input=first["input"]
    )
    assert pipeline.wait(f"{ref.file_id}-replay")["status"] == "SUCCEEDED"

    assert pipeline.record(ref)["status"] == "READY"
    usage = ledger.usage(OWNER)
    assert (usage.stored_bytes, usage.reserved_bytes) == (len(TEXT), 0)


def test_a_failed_run_gives_its_hold_back_and_its_replay_holds_the_bytes_again(pipeline: Pipeline) -> None:
    ledger = _ledger(pipeline)
    pipeline.router.replace("PromoteFunction", lambda spec, event: crash())
    ref, execution = pipeline.process(TEXT, name="a.txt", declared_type="text/plain")
    assert execution["status"] == "FAILED"
    assert pipeline.record(ref)["status"] == "FAILED"
    assert ledger.usage(OWNER).used_bytes == 0
    assert _holds(pipeline) == []

    pipeline.router.replace("PromoteFunction", lambda spec, event: None)
    pipeline.sfn.start_execution(
        stateMachineArn=pipeline.state_machine, name=f"{ref.file_id}-replay", input=execution["input"]
    )

    assert pipeline.wait(f"{ref.file_id}-replay")["status"] == "SUCCEEDED"
    assert pipeline.record(ref)["status"] == "READY"
    usage = ledger.usage(OWNER)
    assert (usage.stored_bytes, usage.reserved_bytes) == (len(TEXT), 0)
