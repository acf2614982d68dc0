"""RescanFiles end to end in moto: READY files scanned again after new definitions, with either Scanner.

The file is made READY by definitions that predate EICAR; the rescan runs after clamd loads ones that know
it, as freshclam's update would bring (ClamAV), or as GuardDuty's own would (GuardDuty scans with them too).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from common.model import clean_prefix
from common.records import now_iso
from common.shares import ShareRecords
from filepipe.clamd import LocalClamd, eicar_bytes
from tests.workflow.conftest import PipelineFactory
from tests.workflow.harness import Pipeline, crash


@pytest.fixture
def clamd(tmp_path: Path) -> Iterator[LocalClamd]:
    """A clamd of this test's own, whose definitions start without the EICAR signature."""
    if not LocalClamd.is_available():
        pytest.fail("clamd is not installed: run `make install` (Debian package clamav-daemon)")
    with LocalClamd(tmp_path / "clamd", detects_eicar=False) as running:
        yield running


def _output(execution: dict[str, Any]) -> dict[str, Any]:
    assert execution["status"] == "SUCCEEDED", execution.get("error")
    output: dict[str, Any] = json.loads(execution["output"])
    return output


def _share(pipeline: Pipeline, file_id: str, owner_id: str) -> ShareRecords:
    shares = ShareRecords(pipeline.stack.client("dynamodb"), pipeline.stack.physical("FilesTable"))
    shares.create(
        {"shareId": f"share-{file_id}", "fileId": file_id, "ownerId": owner_id, "createdAt": now_iso()}
    )
    return shares


def test_new_definitions_find_a_ready_file_infected_and_quarantine_it(
    make_pipeline: PipelineFactory, clamd: LocalClamd
) -> None:
    pipeline = make_pipeline()
    infected, first = pipeline.process(eicar_bytes(), name="invoice.txt", declared_type="text/plain")
    clean, second = pipeline.process(b"just a note\n", name="note.txt", declared_type="text/plain")
    assert (first["status"], second["status"]) == ("SUCCEEDED", "SUCCEEDED")
    assert pipeline.record(infected)["status"] == "READY"  # the old definitions did not know EICAR
    shares = _share(pipeline, infected.file_id, infected.owner_id)
    emails_before = len(pipeline.sent_emails())

    clamd.refresh_definitions(detects_eicar=True)
    report = _output(pipeline.rescan("rescan-after-update"))

    assert report["complete"] is True
    assert report["cursor"] is None
    totals = report["totals"]
    assert (totals["listed"], totals["clean"], totals["infected"]) == (2, 1, 1)
    assert (totals["failed"], totals["skipped"]) == (0, 0)
    assert totals["bytes"] == len(eicar_bytes()) + len(b"just a note\n")
    [found] = report["quarantined"]
    assert found["fileId"] == infected.file_id
    assert "EICAR" in found["signature"]
    record = pipeline.record(infected)
    assert record["status"] == "QUARANTINED"
    assert record["error"]["code"] == "MALWARE_FOUND_ON_RESCAN"
    assert "cleanKey" not in record
    assert "thumbnails" not in record
    moved = pipeline.s3.get_object(
        Bucket=pipeline.quarantine, Key=f"quarantine/{infected.owner_id}/{infected.file_id}"
    )
    assert moved["Body"].read() == eicar_bytes()
    assert pipeline.keys(pipeline.clean, clean_prefix(infected.owner_id, infected.file_id)) == []
    assert shares.list_for_file(infected.file_id) == []
    [email] = pipeline.sent_emails()[emails_before:]
    assert "quarantined" in email.subject
    assert "later scan" in email.body
    # The clean file is untouched, and nothing a rescan copied for GuardDuty stays behind.
    assert pipeline.record(clean)["status"] == "READY"
    assert pipeline.keys(pipeline.clean, clean_prefix(clean.owner_id, clean.file_id))
    assert pipeline.keys(pipeline.ingest, "rescans/") == []


@pytest.mark.parametrize("scanner", ["ClamAV"], indirect=True)
def test_a_dry_run_lists_and_changes_nothing(make_pipeline: PipelineFactory, clamd: LocalClamd) -> None:
    pipeline = make_pipeline()
    ref, _ = pipeline.process(eicar_bytes(), name="invoice.txt", declared_type="text/plain")
    clamd.refresh_definitions(detects_eicar=True)
    scans = pipeline.router.calls["ScanFunction"]

    report = _output(pipeline.rescan("dry-run", dryRun=True))

    assert report["dryRun"] is True
    assert report["complete"] is True
    assert report["totals"]["listed"] == 1
    assert report["totals"]["bytes"] == len(eicar_bytes())
    assert report["totals"]["infected"] == 0
    assert report["quarantined"] == []
    assert pipeline.router.calls["ScanFunction"] == scans
    assert pipeline.record(ref)["status"] == "READY"


@pytest.mark.parametrize("scanner", ["ClamAV"], indirect=True)
def test_a_limit_stops_the_run_and_its_cursor_resumes_it(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline()
    for index in range(3):
        pipeline.process(f"note {index}\n".encode(), name=f"note{index}.txt", declared_type="text/plain")

    listed, cursor, runs = 0, None, 0
    while True:
        runs += 1
        assert runs <= 10, "the cursor never reached the end of the table"
        report = _output(pipeline.rescan(f"part-{runs}", limit=2, cursor=cursor))
        listed += report["totals"]["listed"]
        assert report["totals"]["clean"] == report["totals"]["listed"] <= 2
        if report["complete"]:
            break
        cursor = report["cursor"]
    assert listed == 3
    assert runs >= 2


@pytest.mark.parametrize("scanner", ["ClamAV"], indirect=True)
def test_a_scanner_outage_leaves_files_ready_and_reports_them(
    make_pipeline: PipelineFactory, retry_waits: list[float]
) -> None:
    pipeline = make_pipeline()
    ref, _ = pipeline.process(b"a note\n", name="note.txt", declared_type="text/plain")
    pipeline.router.replace("ScanFunction", lambda spec, event: crash("ScannerUnavailable", "clamd is down"))

    report = _output(pipeline.rescan("outage"))

    assert report["totals"]["failed"] == 1
    assert report["totals"]["clean"] == 0
    assert report["failures"] == [
        {"fileId": ref.file_id, "ownerId": ref.owner_id, "error": "ScannerUnavailable"}
    ]
    assert pipeline.record(ref)["status"] == "READY"
    assert retry_waits, "the scan's own retries ran first"


@pytest.mark.parametrize("scanner", ["ClamAV"], indirect=True)
def test_input_the_workflow_refuses_fails_the_run_before_any_scan(pipeline: Pipeline) -> None:
    now = datetime.now(UTC)
    backwards = {"from": now.isoformat(), "to": (now - timedelta(days=1)).isoformat()}
    execution = pipeline.rescan("bad-window", window=backwards)

    assert execution["status"] == "FAILED"
    assert execution["error"] == "RescanInvalid"
    assert pipeline.router.calls["ScanFunction"] == 0
