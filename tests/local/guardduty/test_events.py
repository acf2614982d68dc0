"""The GuardDuty events the runtime puts on the bus have every field of AWS's documented examples."""

from __future__ import annotations

import re

import pytest

from filepipe.local.services.guardduty import events

PLAN_ARN = "arn:aws:guardduty:us-east-1:123456789012:malware-protection-plan/b4c7f464ab3a4EXAMPLE"
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _result(**changes: object) -> dict[str, object]:
    arguments: dict[str, object] = {
        "account": "123456789012",
        "region": "us-east-1",
        "plan_arn": PLAN_ARN,
        "bucket": "amzn-s3-demo-bucket",
        "key": "uploads/u1/f1",
        "version_id": "d41d8cd98f00b204e9800998eEXAMPLE",
        "etag": '"44d88612fea8a8f36de82e1278abb02f"',
        "scan_status": "COMPLETED",
        "result_status": "THREATS_FOUND",
        "threats": ["EICAR-Test-File (not a virus)"],
    }
    arguments.update(changes)
    return events.object_scan_result(**arguments)  # type: ignore[arg-type]


def test_an_object_scan_result_is_the_documented_event_field_for_field() -> None:
    event = _result()

    assert set(event) == {
        "version",
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources",
        "detail",
    }
    assert event["version"] == "0"
    assert UUID.match(str(event["id"]))
    assert TIME.match(str(event["time"]))
    assert (event["source"], event["detail-type"]) == (
        "aws.guardduty",
        "GuardDuty Malware Protection Object Scan Result",
    )
    assert (event["account"], event["region"], event["resources"]) == (
        "123456789012",
        "us-east-1",
        [PLAN_ARN],
    )
    assert event["detail"] == {
        "schemaVersion": "1.0",
        "scanStatus": "COMPLETED",
        "resourceType": "S3_OBJECT",
        "s3ObjectDetails": {
            "bucketName": "amzn-s3-demo-bucket",
            "objectKey": "uploads/u1/f1",
            "eTag": "44d88612fea8a8f36de82e1278abb02f",  # S3's events carry the ETag without its quotes
            "versionId": "d41d8cd98f00b204e9800998eEXAMPLE",
            "s3Throttled": False,
        },
        "scanResultDetails": {
            "scanResultStatus": "THREATS_FOUND",
            "threats": [{"name": "EICAR-Test-File (not a virus)"}],
        },
    }


def test_each_event_has_its_own_id_and_the_same_object_fields_to_dedup_on() -> None:
    first, second = _result(), _result()

    assert first["id"] != second["id"]
    assert first["detail"]["s3ObjectDetails"] == second["detail"]["s3ObjectDetails"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("scan_status", "result_status"),
    [
        ("COMPLETED", "NO_THREATS_FOUND"),
        ("SKIPPED", "UNSUPPORTED"),
        ("SKIPPED", "ACCESS_DENIED"),
        ("FAILED", "FAILED"),
    ],
)
def test_the_other_statuses_name_no_threat(scan_status: str, result_status: str) -> None:
    event = _result(scan_status=scan_status, result_status=result_status, threats=None)

    assert event["detail"]["scanStatus"] == scan_status  # type: ignore[index]
    assert event["detail"]["scanResultDetails"] == {"scanResultStatus": result_status, "threats": None}  # type: ignore[index]


@pytest.mark.parametrize(
    ("scan_status", "result_status", "threats", "message"),
    [
        ("COMPLETED", "FAILED", None, "reports NO_THREATS_FOUND or THREATS_FOUND, not 'FAILED'"),
        ("SKIPPED", "NO_THREATS_FOUND", None, "reports ACCESS_DENIED or UNSUPPORTED"),
        ("FAILED", "ACCESS_DENIED", None, "reports FAILED, not 'ACCESS_DENIED'"),
        ("RUNNING", "FAILED", None, "scanStatus is one of"),
        ("COMPLETED", "THREATS_FOUND", None, "THREATS_FOUND names the threats"),
        ("COMPLETED", "NO_THREATS_FOUND", ["X"], "only THREATS_FOUND names threats"),
    ],
)
def test_an_event_no_scan_produces_is_refused(
    scan_status: str, result_status: str, threats: list[str] | None, message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        _result(scan_status=scan_status, result_status=result_status, threats=threats)


def test_an_unversioned_object_has_no_version_id() -> None:
    event = _result(version_id=None)

    assert "versionId" not in event["detail"]["s3ObjectDetails"]  # type: ignore[index]


@pytest.mark.parametrize("reason", ["ACCESS_DENIED", "MAX_TAG_LIMIT_EXCEEDED"])
def test_a_post_scan_action_failure_names_the_tagging_and_why(reason: str) -> None:
    event = events.post_scan_action_failed(
        account="123456789012",
        region="us-east-1",
        plan_arn=PLAN_ARN,
        bucket="amzn-s3-demo-bucket",
        key="uploads/u1/f1",
        version_id="v1",
        etag="abc",
        failure_reason=reason,
    )

    assert (event["source"], event["detail-type"]) == (
        "aws.guardduty",
        "GuardDuty Malware Protection Post Scan Action Failed",
    )
    assert event["resources"] == [PLAN_ARN]
    detail = event["detail"]
    assert set(detail) == {"schemaVersion", "eventTime", "s3ObjectDetails", "postScanActions"}
    assert TIME.match(detail["eventTime"])
    assert detail["s3ObjectDetails"]["objectKey"] == "uploads/u1/f1"
    assert detail["postScanActions"] == [{"actionType": "TAGGING", "failureReason": reason}]


def test_a_tagging_failure_gives_one_of_the_two_documented_reasons() -> None:
    with pytest.raises(ValueError, match="ACCESS_DENIED or MAX_TAG_LIMIT_EXCEEDED"):
        events.post_scan_action_failed(
            account="1",
            region="r",
            plan_arn=PLAN_ARN,
            bucket="b",
            key="k",
            version_id=None,
            etag="e",
            failure_reason="THROTTLED",
        )
