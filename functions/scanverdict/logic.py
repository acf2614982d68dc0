"""The verdict's two halves: GuardDuty's scan result event and the run awaiting it, whichever comes first.

The workflow's "Await GuardDuty verdict" task invokes the function with its task token; EventBridge invokes
it with the "GuardDuty Malware Protection Object Scan Result" event. Each records its half in the verdict
store (one item per object version) and, when the other half is there, completes the task with the
verdict: the same ``{verdict, signature, engine, sha256}`` the ClamAV scan step returns, or a failure named
after the domain errors the state machine knows. GuardDuty reports at least once and a replay may ask for a
new scan of the same version, so a stored final result is never replaced and a repeated event changes
nothing; only a rescannable one (FAILED, ACCESS_DENIED) gives way to a later scan, and the run it failed
never gets another.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from common.errors import FilepipeError, ScanIncomplete, ScannerUnavailable
from common.model import FileRef
from common.verdicts import ObjectVersion, ResultStatus, ScanResult, StoreAnswer, VerdictState, Waiter

ENGINE = "GuardDuty Malware Protection for S3"
SOURCE = "aws.guardduty"
DETAIL_TYPE = "GuardDuty Malware Protection Object Scan Result"
# A verdict names the threats found; a few are enough for the record, and they bound the item's size.
MAX_THREATS = 5
MAX_THREAT_NAME = 200
# Claiming a rescannable result can lose to a concurrent write; the next look decides again, a few times.
MAX_CLAIMS = 3


# ------------------------------------------------------------------ the event
class _ObjectDetails(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    bucket_name: str = Field(alias="bucketName", min_length=1)
    object_key: str = Field(alias="objectKey", min_length=1)
    etag: str | None = Field(default=None, alias="eTag")
    version_id: str | None = Field(default=None, alias="versionId")


class _Threat(BaseModel):
    name: str = ""


class _ResultDetails(BaseModel):
    scan_result_status: str = Field(alias="scanResultStatus", min_length=1)
    threats: list[_Threat] | None = None


class _Detail(BaseModel):
    s3_object_details: _ObjectDetails = Field(alias="s3ObjectDetails")
    scan_result_details: _ResultDetails = Field(alias="scanResultDetails")


class ObjectScanResult(BaseModel):
    """The fields of GuardDuty's "Object Scan Result" event the verdict reads (GuardDuty user guide,
    "Monitoring S3 object scans with Amazon EventBridge")."""

    id: str = Field(min_length=1)
    source: Literal["aws.guardduty"]
    detail_type: Literal["GuardDuty Malware Protection Object Scan Result"] = Field(alias="detail-type")
    time: str | None = None
    detail: _Detail


def parse_scan_result(
    event: Mapping[str, Any], ingest_bucket: str
) -> tuple[ObjectVersion, ScanResult] | None:
    """The scanned object version and its result; None for an object that is not an upload of ours.

    Raises ValueError for anything that is not such an event. An unversioned object is named by its ETag,
    as the start function names its run's version.
    """
    try:
        parsed = ObjectScanResult.model_validate(event)
    except ValidationError as error:
        reasons = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
            for problem in error.errors(include_url=False, include_input=False)[:3]
        )
        raise ValueError(f"not a GuardDuty Object Scan Result event: {reasons}") from None
    details = parsed.detail.s3_object_details
    if details.bucket_name != ingest_bucket:
        return None
    version = details.version_id or (details.etag or "").strip('"') or "null"
    try:
        ref = FileRef.from_scanned_object(details.bucket_name, details.object_key, version)
    except ValueError:
        return None
    threats = tuple(
        threat.name[:MAX_THREAT_NAME]
        for threat in (parsed.detail.scan_result_details.threats or [])[:MAX_THREATS]
        if threat.name
    )
    result = ScanResult(
        event_id=parsed.id,
        status=parsed.detail.scan_result_details.scan_result_status,
        threats=threats,
        scanned_at=parsed.time,
    )
    return ObjectVersion(ref.bucket, ref.key, ref.version), result


# ------------------------------------------------------------------ the verdict
@dataclass(frozen=True)
class Verdict:
    """A task's successful output: the scan contract both scanners give the workflow."""

    verdict: Literal["CLEAN", "INFECTED"]
    signature: str | None

    def as_payload(self) -> dict[str, Any]:
        # GuardDuty reads the object itself and reports no hash of it, so the record gets none.
        return {"verdict": self.verdict, "signature": self.signature, "engine": ENGINE, "sha256": None}


Outcome = Verdict | FilepipeError


def outcome_of(result: ScanResult) -> Outcome:
    """What the waiting task ends with: a verdict, or the domain error the state machine routes.

    ScannerUnavailable for what a new scan can mend (GuardDuty's internal FAILED; ACCESS_DENIED, the plan's
    role or the key refused, fixed by the operator), so `filepipe replay` asks GuardDuty for a new scan;
    ScanIncomplete for an object GuardDuty will not scan whatever happens (UNSUPPORTED: password-protected,
    past its archive or size quotas) and for a status it does not document. Neither is retried by the
    workflow: the stored result would only say the same again.
    """
    status = result.status
    where = f"(event {result.event_id})"
    if status == ResultStatus.NO_THREATS_FOUND:
        return Verdict("CLEAN", None)
    if status == ResultStatus.THREATS_FOUND:
        return Verdict("INFECTED", ", ".join(result.threats) or "unnamed threat")
    if status == ResultStatus.UNSUPPORTED:
        return ScanIncomplete(f"GuardDuty skipped the object as UNSUPPORTED {where}: it cannot be scanned")
    if status == ResultStatus.ACCESS_DENIED:
        return ScannerUnavailable(
            f"GuardDuty could not read the object (ACCESS_DENIED) {where}: check the protection plan's role, "
            "then replay"
        )
    if status == ResultStatus.FAILED:
        return ScannerUnavailable(f"GuardDuty failed to scan the object (FAILED) {where}; replay scans again")
    return ScanIncomplete(f"GuardDuty reported an unknown scan result {status!r} {where}")


def failure_cause(error: FilepipeError) -> str:
    """SendTaskFailure's cause, shaped like a Lambda error so the record step reads its code and message."""
    return json.dumps({"errorType": error.code, "errorMessage": str(error)})


# ------------------------------------------------------------------ what the decisions need
class VerdictStore(Protocol):
    def read(self, obj: ObjectVersion) -> VerdictState: ...

    def store_result(self, obj: ObjectVersion, result: ScanResult) -> StoreAnswer: ...

    def wait(self, obj: ObjectVersion, waiter: Waiter) -> VerdictState | None: ...

    def hand(self, obj: ObjectVersion, token: str, event_id: str) -> bool: ...


class Tasks(Protocol):
    """Step Functions' callbacks; False when the task is closed already (ended, timed out, unknown)."""

    def succeed(self, token: str, output: Mapping[str, Any]) -> bool: ...

    def fail(self, token: str, error: str, cause: str) -> bool: ...


@dataclass(frozen=True)
class Handled:
    """What one invocation did, for the log."""

    action: str
    obj: ObjectVersion
    status: str | None = None
    delivered: bool | None = None

    def as_log(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "bucket": self.obj.bucket,
            "key": self.obj.key,
            "version": self.obj.version,
            "resultStatus": self.status,
            "delivered": self.delivered,
        }


def complete(tasks: Tasks, token: str, result: ScanResult) -> bool:
    outcome = outcome_of(result)
    if isinstance(outcome, Verdict):
        return tasks.succeed(token, outcome.as_payload())
    return tasks.fail(token, outcome.code, failure_cause(outcome))


def _deliver(
    obj: ObjectVersion, result: ScanResult, token: str, store: VerdictStore, tasks: Tasks
) -> bool | None:
    """Complete task ``token`` with ``result``; None when a rescannable result could not be claimed for it."""
    if not result.final and not store.hand(obj, token, result.event_id):
        return None
    return complete(tasks, token, result)


def record_scan_result(obj: ObjectVersion, result: ScanResult, store: VerdictStore, tasks: Tasks) -> Handled:
    """Store a scan result once and complete the task waiting for it, if one waits."""
    answer = store.store_result(obj, result)
    if answer.stored:
        previous = answer.state
        waiter = previous.waiter
        # A task a rescannable result was handed to has failed with it: the new result waits for the next.
        if waiter is None or waiter.token == previous.handed_to:
            return Handled("stored; no run waits", obj, result.status)
        delivered = _deliver(obj, result, waiter.token, store, tasks)
        return Handled("stored and handed to the waiting run", obj, result.status, delivered)
    current = answer.state
    if current.result is None or current.result.event_id != result.event_id:
        return Handled("ignored: another scan's result stands", obj, result.status)
    # The same event again (EventBridge delivers at least once): deliver it as its first delivery would.
    token = current.handed_to or (
        current.waiter.token if current.waiter and current.usable_by(current.waiter.token) else None
    )
    if token is None:
        return Handled("repeated; no run waits", obj, result.status)
    delivered = _deliver(obj, current.result, token, store, tasks)
    return Handled("repeated and handed again", obj, result.status, delivered)


def await_verdict(obj: ObjectVersion, waiter: Waiter, store: VerdictStore, tasks: Tasks) -> Handled:
    """Record the waiting task; when a result it may use is stored already, complete the task at once."""
    state = store.wait(obj, waiter)
    if state is None:
        return Handled("stale: a later attempt of this run waits", obj)
    for _ in range(MAX_CLAIMS):
        result = state.result
        if result is None:
            return Handled("waiting for the scan result", obj)
        if not state.usable_by(waiter.token):
            return Handled("waiting for a new scan", obj, result.status)
        delivered = _deliver(obj, result, waiter.token, store, tasks)
        if delivered is not None:
            return Handled("completed with the stored result", obj, result.status, delivered)
        state = store.read(obj)
    return Handled("waiting: the stored result kept changing", obj)


def handle(event: Mapping[str, Any], ingest_bucket: str, store: VerdictStore, tasks: Tasks) -> Handled | None:
    """Tell the two kinds of invocation apart: the workflow's (a task token) or EventBridge's (an event).

    None for a scan result about an object that is not an upload of this stack.
    """
    if "taskToken" in event:
        ref = FileRef.upload_from_state(dict(event), ingest_bucket, "the verdict")
        waiter = Waiter(
            token=str(event["taskToken"]),
            execution=str(event.get("executionName") or ""),
            redrive_count=int(event.get("redriveCount") or 0),
        )
        return await_verdict(ObjectVersion(ref.bucket, ref.key, ref.version), waiter, store, tasks)
    parsed = parse_scan_result(event, ingest_bucket)
    if parsed is None:
        return None
    return record_scan_result(*parsed, store, tasks)
