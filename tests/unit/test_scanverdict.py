"""The scan verdict: GuardDuty's result and the waiting run meet once, in any order, in the verdict store.

The store is the real adapter on moto's DynamoDB (the files table's keys as template.yaml declares them);
Step Functions' callbacks are recorded by a fake that can say a task is closed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from common.errors import ScanIncomplete, ScannerUnavailable, ServiceThrottled, failure_reason
from common.model import ingest_key
from common.verdict_store import ScanVerdicts
from common.verdicts import ObjectVersion, ScanResult, Waiter
from filepipe.local.services.guardduty import events as guardduty_events
from filepipe.template import ROOT, Template
from scanverdict.callbacks import StepFunctionsTasks
from scanverdict.logic import (
    ENGINE,
    MAX_THREATS,
    Verdict,
    await_verdict,
    failure_cause,
    handle,
    outcome_of,
    parse_scan_result,
    record_scan_result,
)

REGION = "us-east-1"
BUCKET = "ingest-bucket"
OWNER = "0f6c5e2a-7b1d-4c55-9d0e-2d7a1c9b8e41"
FILE_ID = "01J0000000000000000000000Z"
KEY = ingest_key(OWNER, FILE_ID)
OBJ = ObjectVersion(BUCKET, KEY, "version-1")
PLAN = "arn:aws:guardduty:us-east-1:123456789012:malware-protection-plan/plan"
RETENTION = 30 * 86400
NOW = 1_900_000_000.0
THREAT = "EICAR-Test-File (not a virus)"


class Tasks:
    """Step Functions' callbacks, recorded; tokens in ``closed`` answer as a task that is over."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Any]] = []
        self.closed: set[str] = set()

    def succeed(self, token: str, output: Mapping[str, Any]) -> bool:
        self.sent.append((token, "success", dict(output)))
        return token not in self.closed

    def fail(self, token: str, error: str, cause: str) -> bool:
        self.sent.append((token, error, json.loads(cause)))
        return token not in self.closed


@pytest.fixture
def store(template: Template, monkeypatch: pytest.MonkeyPatch) -> Iterator[ScanVerdicts]:
    """The verdict store in a table with the files table's keys (template.yaml's FilesTable)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    table = template.resources["FilesTable"]["Properties"]
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName="files",
            KeySchema=table["KeySchema"],
            AttributeDefinitions=[
                a for a in table["AttributeDefinitions"] if a["AttributeName"] in ("pk", "sk")
            ],
            BillingMode=table["BillingMode"],
        )
        yield ScanVerdicts(dynamodb, "files", RETENTION, clock=lambda: NOW)


@pytest.fixture
def tasks() -> Tasks:
    return Tasks()


def result(status: str, event_id: str = "event-1", threats: tuple[str, ...] = ()) -> ScanResult:
    return ScanResult(event_id=event_id, status=status, threats=threats, scanned_at="2026-11-22T12:00:00Z")


def waiter(token: str, execution: str = FILE_ID, redrive_count: int = 0) -> Waiter:
    return Waiter(token=token, execution=execution, redrive_count=redrive_count)


CLEAN = {"verdict": "CLEAN", "signature": None, "engine": ENGINE, "sha256": None}


def event(status: str = "NO_THREATS_FOUND", **overrides: Any) -> dict[str, Any]:
    """An "Object Scan Result" event of an upload, as GuardDuty's shape gives it."""
    arguments: dict[str, Any] = {
        "account": "123456789012",
        "region": REGION,
        "plan_arn": PLAN,
        "bucket": BUCKET,
        "key": KEY,
        "version_id": "version-1",
        "etag": '"0123456789abcdef"',
        "scan_status": guardduty_events.SCAN_STATUS_OF[status],
        "result_status": status,
        "threats": [THREAT] if status == "THREATS_FOUND" else None,
        **overrides,
    }
    return guardduty_events.object_scan_result(**arguments)


# ---------------------------------------------------------------------------------------------- the event
def test_a_scan_result_event_names_the_object_version_and_its_result() -> None:
    sent = event("THREATS_FOUND")
    parsed = parse_scan_result(sent, BUCKET)

    assert parsed == (
        OBJ,
        ScanResult(event_id=sent["id"], status="THREATS_FOUND", threats=(THREAT,), scanned_at=sent["time"]),
    )


def test_an_unversioned_object_is_named_by_its_etag_as_its_run_is() -> None:
    parsed = parse_scan_result(event(version_id=None), BUCKET)
    assert parsed is not None
    assert parsed[0].version == "0123456789abcdef"


def test_results_for_other_buckets_and_other_keys_are_not_ours() -> None:
    assert parse_scan_result(event(bucket="someone-elses"), BUCKET) is None
    assert parse_scan_result(event(key="malware-protection-resource-validation-object"), BUCKET) is None


@pytest.mark.parametrize(
    "broken",
    [
        {"source": "aws.s3"},
        {"detail-type": "GuardDuty Malware Protection Post Scan Action Failed"},
        {"detail": {"s3ObjectDetails": {"bucketName": BUCKET}}},
        {"id": ""},
    ],
    ids=["source", "detail-type", "no result", "no id"],
)
def test_anything_else_is_refused(broken: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="not a GuardDuty Object Scan Result event"):
        parse_scan_result({**event(), **broken}, BUCKET)


def test_a_few_threats_are_kept_and_names_are_bounded() -> None:
    many = event("THREATS_FOUND", threats=[f"threat-{i}-" + "x" * 300 for i in range(12)])
    parsed = parse_scan_result(many, BUCKET)
    assert parsed is not None
    assert len(parsed[1].threats) == MAX_THREATS
    assert all(len(name) == 200 for name in parsed[1].threats)


# ---------------------------------------------------------------------------------------------- the verdict
def test_no_threats_and_threats_are_the_scan_contracts_verdicts() -> None:
    assert outcome_of(result("NO_THREATS_FOUND")) == Verdict("CLEAN", None)
    assert Verdict("CLEAN", None).as_payload() == CLEAN
    infected = outcome_of(result("THREATS_FOUND", threats=(THREAT, "Other")))
    assert infected == Verdict("INFECTED", f"{THREAT}, Other")


@pytest.mark.parametrize(
    ("status", "error"),
    [
        ("UNSUPPORTED", ScanIncomplete),
        ("ACCESS_DENIED", ScannerUnavailable),
        ("FAILED", ScannerUnavailable),
        ("SOMETHING_NEW", ScanIncomplete),
    ],
)
def test_a_result_without_a_verdict_is_a_domain_error_the_record_reads(status: str, error: type) -> None:
    outcome = outcome_of(result(status))
    assert isinstance(outcome, error)
    assert isinstance(outcome, ScanIncomplete | ScannerUnavailable)  # for the type checker
    # The task's failure carries the cause the record step turns into the file's error.
    reason = failure_reason({"Error": outcome.code, "Cause": failure_cause(outcome)})
    assert reason["code"] == error.__name__
    assert status in reason["message"]


def test_only_failed_and_access_denied_give_way_to_a_new_scan() -> None:
    final = {s for s in ("NO_THREATS_FOUND", "THREATS_FOUND", "UNSUPPORTED") if result(s).final}
    assert final == {"NO_THREATS_FOUND", "THREATS_FOUND", "UNSUPPORTED"}
    assert not result("FAILED").final
    assert not result("ACCESS_DENIED").final


# ---------------------------------------------------------------------------------------------- meeting
def test_the_run_waits_then_the_result_completes_it_once(store: ScanVerdicts, tasks: Tasks) -> None:
    assert await_verdict(OBJ, waiter("t0"), store, tasks).action == "waiting for the scan result"
    assert tasks.sent == []

    handled = record_scan_result(OBJ, result("NO_THREATS_FOUND"), store, tasks)

    assert (handled.action, handled.delivered) == ("stored and handed to the waiting run", True)
    assert tasks.sent == [("t0", "success", CLEAN)]


def test_a_result_stored_before_the_run_asks_completes_it_at_once(store: ScanVerdicts, tasks: Tasks) -> None:
    assert record_scan_result(OBJ, result("THREATS_FOUND", threats=(THREAT,)), store, tasks).action == (
        "stored; no run waits"
    )

    handled = await_verdict(OBJ, waiter("t0"), store, tasks)

    assert handled.action == "completed with the stored result"
    assert tasks.sent == [("t0", "success", {**CLEAN, "verdict": "INFECTED", "signature": THREAT})]


def test_a_repeated_event_gives_the_same_outcome_to_the_same_task(store: ScanVerdicts, tasks: Tasks) -> None:
    await_verdict(OBJ, waiter("t0"), store, tasks)
    record_scan_result(OBJ, result("NO_THREATS_FOUND"), store, tasks)
    tasks.closed.add("t0")

    again = record_scan_result(OBJ, result("NO_THREATS_FOUND"), store, tasks)

    assert (again.action, again.delivered) == ("repeated and handed again", False)
    assert tasks.sent == [("t0", "success", CLEAN), ("t0", "success", CLEAN)]


def test_another_scans_result_never_replaces_a_final_one(store: ScanVerdicts, tasks: Tasks) -> None:
    record_scan_result(OBJ, result("NO_THREATS_FOUND"), store, tasks)
    late = record_scan_result(OBJ, result("THREATS_FOUND", "event-2", (THREAT,)), store, tasks)

    assert late.action == "ignored: another scan's result stands"
    assert store.read(OBJ).result == result("NO_THREATS_FOUND")
    await_verdict(OBJ, waiter("t0"), store, tasks)
    assert tasks.sent == [("t0", "success", CLEAN)]


def test_a_failed_scan_fails_its_run_only_and_the_next_run_waits_for_the_new_scan(
    store: ScanVerdicts, tasks: Tasks
) -> None:
    await_verdict(OBJ, waiter("t0"), store, tasks)
    record_scan_result(OBJ, result("FAILED"), store, tasks)
    [(token, error, cause)] = tasks.sent
    assert (token, error, cause["errorType"]) == ("t0", "ScannerUnavailable", "ScannerUnavailable")
    tasks.closed.add("t0")

    # The replay's new run (another execution) does not take the result the first run failed with.
    replay = waiter("t1", execution=f"{FILE_ID}-replay-1")
    assert await_verdict(OBJ, replay, store, tasks).action == "waiting for a new scan"
    # A repeat of the old result goes back to the run it failed, never to the new one.
    repeated = record_scan_result(OBJ, result("FAILED"), store, tasks)
    assert (repeated.action, repeated.delivered) == ("repeated and handed again", False)
    assert [sent[0] for sent in tasks.sent] == ["t0", "t0"]

    new_scan = record_scan_result(OBJ, result("NO_THREATS_FOUND", "event-2"), store, tasks)

    assert (new_scan.action, new_scan.delivered) == ("stored and handed to the waiting run", True)
    assert tasks.sent[-1] == ("t1", "success", CLEAN)


def test_a_new_scan_reported_before_the_next_run_asks_waits_for_it(store: ScanVerdicts, tasks: Tasks) -> None:
    await_verdict(OBJ, waiter("t0"), store, tasks)
    record_scan_result(OBJ, result("ACCESS_DENIED"), store, tasks)

    early = record_scan_result(OBJ, result("NO_THREATS_FOUND", "event-2"), store, tasks)
    assert early.action == "stored; no run waits"  # t0 had its result already
    handled = await_verdict(OBJ, waiter("t1", execution=f"{FILE_ID}-replay-1"), store, tasks)

    assert handled.action == "completed with the stored result"
    assert [sent[0] for sent in tasks.sent] == ["t0", "t1"]
    assert tasks.sent[-1] == ("t1", "success", CLEAN)


def test_a_failed_result_no_run_had_goes_to_the_first_that_asks(store: ScanVerdicts, tasks: Tasks) -> None:
    record_scan_result(OBJ, result("FAILED"), store, tasks)

    handled = await_verdict(OBJ, waiter("t0"), store, tasks)

    assert handled.action == "completed with the stored result"
    assert [(token, error) for token, error, _ in tasks.sent] == [("t0", "ScannerUnavailable")]
    assert store.read(OBJ).handed_to == "t0"


def test_an_earlier_attempt_of_a_redriven_run_is_stale(store: ScanVerdicts, tasks: Tasks) -> None:
    assert await_verdict(OBJ, waiter("t0"), store, tasks).action == "waiting for the scan result"
    assert (
        await_verdict(OBJ, waiter("t1", redrive_count=1), store, tasks).action
        == "waiting for the scan result"
    )

    stale = await_verdict(OBJ, waiter("t0-late"), store, tasks)
    record_scan_result(OBJ, result("NO_THREATS_FOUND"), store, tasks)

    assert stale.action == "stale: a later attempt of this run waits"
    assert tasks.sent == [("t1", "success", CLEAN)]  # only the redriven attempt's token
    assert store.read(OBJ).waiter == waiter("t1", redrive_count=1)


def test_a_result_for_another_version_completes_no_run_of_this_one(store: ScanVerdicts, tasks: Tasks) -> None:
    await_verdict(OBJ, waiter("t0"), store, tasks)
    other = ObjectVersion(BUCKET, KEY, "version-2")

    handled = record_scan_result(other, result("THREATS_FOUND", threats=(THREAT,)), store, tasks)

    assert handled.action == "stored; no run waits"
    assert tasks.sent == []
    assert store.read(OBJ).result is None


def test_the_item_sits_beside_the_records_and_expires_after_the_retention(
    store: ScanVerdicts, tasks: Tasks
) -> None:
    await_verdict(OBJ, waiter("t0"), store, tasks)
    record_scan_result(OBJ, result("NO_THREATS_FOUND"), store, tasks)

    item = boto3.client("dynamodb", region_name=REGION).get_item(
        TableName="files", Key={"pk": {"S": f"SCAN#{BUCKET}/{KEY}"}, "sk": {"S": "VERSION#version-1"}}
    )["Item"]
    assert item["expiresAtEpoch"] == {"N": str(int(NOW) + RETENTION)}
    assert item["resultStatus"] == {"S": "NO_THREATS_FOUND"}
    assert item["taskToken"] == {"S": "t0"}


# ---------------------------------------------------------------------------------------------- the handler
def test_the_handler_tells_the_await_task_from_the_scan_result(store: ScanVerdicts, tasks: Tasks) -> None:
    file = {"bucket": BUCKET, "key": KEY, "version": "version-1", "ownerId": OWNER, "fileId": FILE_ID}
    awaited = handle(
        {"taskToken": "t0", "file": file, "executionName": FILE_ID, "redriveCount": 0}, BUCKET, store, tasks
    )
    scanned = handle(event(), BUCKET, store, tasks)
    foreign = handle(event(bucket="someone-elses"), BUCKET, store, tasks)

    assert awaited is not None
    assert awaited.action == "waiting for the scan result"
    assert scanned is not None
    assert scanned.action == "stored and handed to the waiting run"
    assert foreign is None
    with pytest.raises(ValueError, match="reads uploads from"):
        handle({"taskToken": "t1", "file": {**file, "bucket": "other"}}, BUCKET, store, tasks)


# ---------------------------------------------------------------------------------------------- callbacks
class StepFunctions:
    """A Step Functions client that answers each call with the next error code (None: success)."""

    def __init__(self, *codes: str | None) -> None:
        self.codes = list(codes)
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def _answer(self, operation: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((operation, kwargs))
        code = self.codes.pop(0)
        if code:
            raise ClientError({"Error": {"Code": code, "Message": code}}, operation)
        return {}

    def send_task_success(self, **kwargs: Any) -> dict[str, Any]:
        return self._answer("SendTaskSuccess", kwargs)

    def send_task_failure(self, **kwargs: Any) -> dict[str, Any]:
        return self._answer("SendTaskFailure", kwargs)


def test_callbacks_send_json_and_bounded_errors() -> None:
    client = StepFunctions(None, None)
    callbacks = StepFunctionsTasks(client)

    assert callbacks.succeed("t", CLEAN) is True
    assert callbacks.fail("t", "E" * 300, "c" * 40000) is True
    (_, success), (_, failure) = client.calls
    assert json.loads(success["output"]) == CLEAN
    assert (len(failure["error"]), len(failure["cause"])) == (256, 32768)


@pytest.mark.parametrize("code", ["TaskTimedOut", "TaskDoesNotExist", "InvalidToken"])
def test_a_closed_task_is_not_a_failure_of_the_verdict(code: str) -> None:
    assert StepFunctionsTasks(StepFunctions(code)).succeed("t", CLEAN) is False


def test_throttling_is_retried_and_other_refusals_are_errors() -> None:
    with pytest.raises(ServiceThrottled):
        StepFunctionsTasks(StepFunctions("ThrottlingException")).succeed("t", CLEAN)
    with pytest.raises(ClientError):
        StepFunctionsTasks(StepFunctions("AccessDeniedException")).fail("t", "E", "c")


def _shape(value: Any) -> Any:
    """The keys of nested objects, without the values."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value]
    return type(value).__name__


def test_the_sample_events_are_ones_the_verdict_reads() -> None:
    sample = json.loads((ROOT / "events" / "guardduty_object_scan_result.json").read_text())
    assert _shape(sample) == _shape(event("THREATS_FOUND"))  # GuardDuty's shape, as the helper builds it
    parsed = parse_scan_result(sample, "filepipe-ingest-example")
    assert parsed is not None
    assert (parsed[0].version, parsed[1].status, parsed[1].threats) == (
        "3HL4kqtJvjVBH40Nrjfkd",
        "THREATS_FOUND",
        (THREAT,),
    )
    awaiting = json.loads((ROOT / "events" / "scan_verdict_await.json").read_text())
    definition = json.loads((ROOT / "statemachines" / "process_upload.asl.json").read_text())
    payload = definition["States"]["Await GuardDuty verdict"]["Parameters"]["Payload"]
    assert set(awaiting) == {name.removesuffix(".$") for name in payload}  # what the await task sends
