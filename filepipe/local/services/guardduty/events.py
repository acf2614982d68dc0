"""The EventBridge events GuardDuty Malware Protection for S3 puts on the default bus, as AWS documents them.

Shapes from the GuardDuty user guide, "Monitoring S3 object scans with Amazon EventBridge": the "S3 object
scan result" example (source ``aws.guardduty``, ``resources`` the plan's ARN, ``detail`` with
``schemaVersion`` 1.0, ``scanStatus``, ``resourceType`` S3_OBJECT, ``s3ObjectDetails`` {bucketName,
objectKey, eTag, versionId, s3Throttled} and ``scanResultDetails`` {scanResultStatus, threats [{name}]}),
and the post-scan tag failure event (``detail`` with ``schemaVersion``, ``eventTime``, ``s3ObjectDetails``
and ``postScanActions``; the failure reasons ACCESS_DENIED and MAX_TAG_LIMIT_EXCEEDED are those of
"Troubleshooting S3 object post-scan tag failures"). The pairs of scan status and result status are the
user guide's "S3 object potential scan status and result status": an event no scan can produce is refused
here, so a test cannot feed the workflow one that AWS never sends.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

SOURCE = "aws.guardduty"
OBJECT_SCAN_RESULT = "GuardDuty Malware Protection Object Scan Result"
POST_SCAN_ACTION_FAILED = "GuardDuty Malware Protection Post Scan Action Failed"
SCHEMA_VERSION = "1.0"
RESOURCE_TYPE = "S3_OBJECT"
# The object tag a plan with tagging ENABLED writes, its value the result status.
SCAN_STATUS_TAG = "GuardDutyMalwareScanStatus"

NO_THREATS_FOUND = "NO_THREATS_FOUND"
THREATS_FOUND = "THREATS_FOUND"
UNSUPPORTED = "UNSUPPORTED"
ACCESS_DENIED = "ACCESS_DENIED"
FAILED = "FAILED"

COMPLETED = "COMPLETED"
SKIPPED = "SKIPPED"

# scanStatus -> the result statuses a scan with that status reports.
RESULTS_BY_SCAN_STATUS: dict[str, frozenset[str]] = {
    COMPLETED: frozenset({NO_THREATS_FOUND, THREATS_FOUND}),
    SKIPPED: frozenset({UNSUPPORTED, ACCESS_DENIED}),
    FAILED: frozenset({FAILED}),
}
SCAN_STATUS_OF: dict[str, str] = {
    result: scan_status for scan_status, results in RESULTS_BY_SCAN_STATUS.items() for result in results
}

TAGGING = "TAGGING"
TAG_ACCESS_DENIED = "ACCESS_DENIED"
MAX_TAG_LIMIT_EXCEEDED = "MAX_TAG_LIMIT_EXCEEDED"


def event_time(moment: datetime | None = None) -> str:
    """EventBridge's ``time`` layout: ``2024-02-28T01:01:01Z``."""
    return (moment or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _object_details(bucket: str, key: str, version_id: str | None, etag: str) -> dict[str, Any]:
    details: dict[str, Any] = {"bucketName": bucket, "objectKey": key, "eTag": etag.strip('"')}
    if version_id is not None:  # an unversioned bucket's objects have no version to name
        details["versionId"] = version_id
    # GuardDuty sets it when S3 throttled it while reading the object; S3 never throttles locally.
    details["s3Throttled"] = False
    return details


def _envelope(
    detail_type: str, account: str, region: str, plan_arn: str, detail: dict[str, Any]
) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": SOURCE,
        "account": account,
        "time": event_time(),
        "region": region,
        "resources": [plan_arn],
        "detail": detail,
    }


def object_scan_result(
    *,
    account: str,
    region: str,
    plan_arn: str,
    bucket: str,
    key: str,
    version_id: str | None,
    etag: str,
    scan_status: str,
    result_status: str,
    threats: list[str] | None = None,
) -> dict[str, Any]:
    """The whole "GuardDuty Malware Protection Object Scan Result" event for one scanned object version.

    Each call is a new event (its own ``id``): a consumer dedups on the object (bucket, key, versionId,
    eTag), as GuardDuty delivers at least once and a new scan of the same version is a new event too.
    Raises ValueError for a pair of statuses GuardDuty never reports together, for THREATS_FOUND without
    a threat's name, or for threats named with any other result.
    """
    allowed = RESULTS_BY_SCAN_STATUS.get(scan_status)
    if allowed is None:
        raise ValueError(f"scanStatus is one of {sorted(RESULTS_BY_SCAN_STATUS)}, not {scan_status!r}")
    if result_status not in allowed:
        raise ValueError(
            f"a scan with scanStatus {scan_status} reports {' or '.join(sorted(allowed))}, "
            f"not {result_status!r}"
        )
    if result_status == THREATS_FOUND and not threats:
        raise ValueError("THREATS_FOUND names the threats found")
    if result_status != THREATS_FOUND and threats:
        raise ValueError(f"only THREATS_FOUND names threats, not {result_status}")
    detail = {
        "schemaVersion": SCHEMA_VERSION,
        "scanStatus": scan_status,
        "resourceType": RESOURCE_TYPE,
        "s3ObjectDetails": _object_details(bucket, key, version_id, etag),
        "scanResultDetails": {
            "scanResultStatus": result_status,
            "threats": [{"name": name} for name in threats] if threats else None,
        },
    }
    return _envelope(OBJECT_SCAN_RESULT, account, region, plan_arn, detail)


def post_scan_action_failed(
    *,
    account: str,
    region: str,
    plan_arn: str,
    bucket: str,
    key: str,
    version_id: str | None,
    etag: str,
    failure_reason: str,
) -> dict[str, Any]:
    """The "GuardDuty Malware Protection Post Scan Action Failed" event: the scan's tag could not be added.

    ``failure_reason`` is ACCESS_DENIED (the plan's role may not tag the object, or it is gone) or
    MAX_TAG_LIMIT_EXCEEDED (the object has its 10 tags already); anything else raises ValueError.
    """
    if failure_reason not in (TAG_ACCESS_DENIED, MAX_TAG_LIMIT_EXCEEDED):
        raise ValueError(
            f"a tag fails with {TAG_ACCESS_DENIED} or {MAX_TAG_LIMIT_EXCEEDED}, not {failure_reason!r}"
        )
    detail = {
        "schemaVersion": SCHEMA_VERSION,
        "eventTime": event_time(),
        "s3ObjectDetails": _object_details(bucket, key, version_id, etag),
        "postScanActions": [{"actionType": TAGGING, "failureReason": failure_reason}],
    }
    return _envelope(POST_SCAN_ACTION_FAILED, account, region, plan_arn, detail)
