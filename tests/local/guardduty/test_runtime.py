"""GuardDuty Malware Protection on `filepipe local`: uploads scanned as the plan's role, reported on the bus.

Each runtime runs the test template (a bucket protected under uploads/, tagging on) or a copy of it with a
mistake a developer might make; the tests read GuardDuty's events from a rule's queue and the objects' tags
as an operator would, and expect what AWS gives.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from filepipe.clamd import eicar_bytes
from filepipe.local.services.guardduty import events
from tests.local.conftest import LocalProcess, free_ports
from tests.local.guardduty.stacks import REGION, admin, outputs, start, write_template
from tests.local.provisioning import replace

pytestmark = pytest.mark.local

WAIT_SECONDS = 30.0
# After the events awaited, how long a duplicate would have had to arrive.
GRACE_SECONDS = 1.0
MAX_OBJECT_BYTES = 4096
READ_GRANT = "                Action: [s3:GetObject, s3:GetObjectVersion]\n"
TAG_GRANT = """                Action:
                  - s3:GetObjectTagging
                  - s3:GetObjectVersionTagging
                  - s3:PutObjectTagging
                  - s3:PutObjectVersionTagging
"""
TRUSTED_SERVICE = "              Service: malware-protection-plan.guardduty.amazonaws.com\n"


class GuardDutyEvents:
    """GuardDuty's events as the test template's rule delivers them to its queue."""

    def __init__(self, stack: LocalProcess) -> None:
        self._sqs = admin(stack, "sqs")
        self._queue_url = outputs(stack)["GuardDutyEventsQueueUrl"]
        self.seen: list[dict[str, Any]] = []

    def _drain(self) -> None:
        while True:
            received = self._sqs.receive_message(QueueUrl=self._queue_url, MaxNumberOfMessages=10)
            messages = received.get("Messages", [])
            if not messages:
                return
            for message in messages:
                self.seen.append(json.loads(message["Body"]))
                self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])

    def of(self, key: str, detail_type: str = events.OBJECT_SCAN_RESULT) -> list[dict[str, Any]]:
        return [
            event
            for event in self.seen
            if event["detail-type"] == detail_type and event["detail"]["s3ObjectDetails"]["objectKey"] == key
        ]

    def wait(
        self, key: str, count: int = 1, detail_type: str = events.OBJECT_SCAN_RESULT
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + WAIT_SECONDS
        while len(self.of(key, detail_type)) < count:
            assert time.monotonic() < deadline, f"no {count} {detail_type} event(s) for {key}: {self.seen}"
            time.sleep(0.1)
            self._drain()
        return self.of(key, detail_type)

    def settled(self) -> None:
        """Whatever else was to come has come."""
        time.sleep(GRACE_SECONDS)
        self._drain()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalProcess]:
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv("FILEPIPE_LOCAL_GUARDDUTY_MAX_OBJECT_BYTES", str(MAX_OBJECT_BYTES))
        running = start(tmp_path_factory.mktemp("guardduty"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def guardduty_events(stack: LocalProcess) -> GuardDutyEvents:
    return GuardDutyEvents(stack)


def _bucket(stack: LocalProcess) -> str:
    return outputs(stack)["UploadsBucketName"]


def _tags(stack: LocalProcess, key: str, version_id: str) -> dict[str, str]:
    found = admin(stack, "s3").get_object_tagging(Bucket=_bucket(stack), Key=key, VersionId=version_id)
    return {tag["Key"]: tag["Value"] for tag in found["TagSet"]}


def _status(event: dict[str, Any]) -> tuple[str, str]:
    return event["detail"]["scanStatus"], event["detail"]["scanResultDetails"]["scanResultStatus"]


def _refusal(call: Any) -> tuple[int, str, str]:
    with pytest.raises(ClientError) as raised:
        call()
    response = raised.value.response
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


# ------------------------------------------------------------------ the test template as it is


@pytest.mark.parametrize(
    ("key", "body", "status", "threats"),
    [
        ("uploads/clean.txt", b"nothing to see", ("COMPLETED", "NO_THREATS_FOUND"), None),
        (
            "uploads/eicar.com",
            eicar_bytes(),
            ("COMPLETED", "THREATS_FOUND"),
            [{"name": "Filepipe.Test.EICAR-Body.UNOFFICIAL"}],
        ),
        ("uploads/large.bin", b"x" * (MAX_OBJECT_BYTES + 1), ("SKIPPED", "UNSUPPORTED"), None),
    ],
    ids=["clean", "eicar", "over-the-maximum-size"],
)
def test_an_upload_is_scanned_tagged_and_reported_on_the_default_bus(
    stack: LocalProcess,
    guardduty_events: GuardDutyEvents,
    key: str,
    body: bytes,
    status: tuple[str, str],
    threats: list[dict[str, str]] | None,
) -> None:
    stored = admin(stack, "s3").put_object(Bucket=_bucket(stack), Key=key, Body=body)

    [event] = guardduty_events.wait(key)

    assert _status(event) == status
    assert event["detail"]["scanResultDetails"]["threats"] == threats
    assert event["resources"] == [outputs(stack)["PlanArn"]]
    assert (event["source"], event["account"], event["region"]) == ("aws.guardduty", "123456789012", REGION)
    assert event["detail"]["s3ObjectDetails"] == {
        "bucketName": _bucket(stack),
        "objectKey": key,
        "eTag": stored["ETag"].strip('"'),
        "versionId": stored["VersionId"],
        "s3Throttled": False,
    }
    assert _tags(stack, key, stored["VersionId"]) == {"GuardDutyMalwareScanStatus": status[1]}


def test_every_way_s3_creates_an_object_is_scanned_once(
    stack: LocalProcess, guardduty_events: GuardDutyEvents
) -> None:
    s3, bucket = admin(stack, "s3"), _bucket(stack)
    versions: dict[str, str] = {}
    versions["uploads/put"] = s3.put_object(Bucket=bucket, Key="uploads/put", Body=b"put")["VersionId"]
    form = s3.generate_presigned_post(bucket, "uploads/post", ExpiresIn=300)
    posted = requests.post(form["url"], data=form["fields"], files={"file": b"post"}, timeout=30)
    assert posted.status_code == 204, posted.text
    versions["uploads/post"] = posted.headers["x-amz-version-id"]
    copy_source = {"Bucket": bucket, "Key": "uploads/put"}
    versions["uploads/copy"] = s3.copy_object(Bucket=bucket, Key="uploads/copy", CopySource=copy_source)[
        "VersionId"
    ]
    upload = s3.create_multipart_upload(Bucket=bucket, Key="uploads/multipart")["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key="uploads/multipart", UploadId=upload, PartNumber=1, Body=b"part")
    versions["uploads/multipart"] = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="uploads/multipart",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )["VersionId"]

    for key in versions:
        guardduty_events.wait(key)
    guardduty_events.settled()

    for key, version_id in versions.items():
        [event] = guardduty_events.of(key)
        assert event["detail"]["s3ObjectDetails"]["versionId"] == version_id
        assert _status(event) == ("COMPLETED", "NO_THREATS_FOUND")


def test_an_upload_keeps_its_own_tags_beside_guarddutys(
    stack: LocalProcess, guardduty_events: GuardDutyEvents
) -> None:
    stored = admin(stack, "s3").put_object(
        Bucket=_bucket(stack), Key="uploads/tagged.txt", Body=b"t", Tagging="owner=u1"
    )

    guardduty_events.wait("uploads/tagged.txt")

    assert _tags(stack, "uploads/tagged.txt", stored["VersionId"]) == {
        "owner": "u1",
        "GuardDutyMalwareScanStatus": "NO_THREATS_FOUND",
    }


def test_outside_the_plans_prefixes_only_send_object_malware_scan_scans(
    stack: LocalProcess, guardduty_events: GuardDutyEvents
) -> None:
    stored = admin(stack, "s3").put_object(Bucket=_bucket(stack), Key="elsewhere/a.txt", Body=b"a")

    admin(stack, "guardduty").send_object_malware_scan(
        S3Object={"Bucket": _bucket(stack), "Key": "elsewhere/a.txt"}
    )

    [event] = guardduty_events.wait("elsewhere/a.txt")
    guardduty_events.settled()
    assert len(guardduty_events.of("elsewhere/a.txt")) == 1  # the upload itself was not scanned
    assert event["detail"]["s3ObjectDetails"]["versionId"] == stored["VersionId"]  # the latest version


def test_send_object_malware_scan_scans_a_version_again_in_a_new_event(
    stack: LocalProcess, guardduty_events: GuardDutyEvents
) -> None:
    s3, bucket = admin(stack, "s3"), _bucket(stack)
    first = s3.put_object(Bucket=bucket, Key="uploads/again.txt", Body=b"first")
    s3.put_object(Bucket=bucket, Key="uploads/again.txt", Body=b"second")
    guardduty_events.wait("uploads/again.txt", count=2)

    answer = admin(stack, "guardduty").send_object_malware_scan(
        S3Object={"Bucket": bucket, "Key": "uploads/again.txt", "VersionId": first["VersionId"]}
    )

    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    scans = guardduty_events.wait("uploads/again.txt", count=3)
    of_first = [e for e in scans if e["detail"]["s3ObjectDetails"]["versionId"] == first["VersionId"]]
    assert len(of_first) == 2
    assert of_first[0]["id"] != of_first[1]["id"]
    assert of_first[0]["detail"]["s3ObjectDetails"] == of_first[1]["detail"]["s3ObjectDetails"]


def test_send_object_malware_scan_refuses_what_guardduty_refuses(stack: LocalProcess) -> None:
    guardduty, s3, bucket = admin(stack, "guardduty"), admin(stack, "s3"), _bucket(stack)
    s3.create_bucket(Bucket="unprotected-bucket")
    s3.put_object(Bucket="unprotected-bucket", Key="a.txt", Body=b"a")

    def send(**s3_object: str) -> Any:
        return lambda: guardduty.send_object_malware_scan(S3Object=s3_object)

    unprotected = _refusal(send(Bucket="unprotected-bucket", Key="a.txt"))
    assert unprotected == (
        400,
        "BadRequestException",
        "The bucket unprotected-bucket is not protected by a Malware Protection plan.",
    )
    missing = _refusal(send(Bucket=bucket, Key="uploads/never-uploaded"))
    assert missing[:2] == (400, "BadRequestException")
    assert "does not exist" in missing[2]
    s3.put_object(Bucket=bucket, Key="uploads/versions.txt", Body=b"a")
    no_version = _refusal(send(Bucket=bucket, Key="uploads/versions.txt", VersionId="no-such-version"))
    assert no_version[:2] == (400, "BadRequestException")
    assert _refusal(lambda: guardduty.send_object_malware_scan())[:2] == (400, "BadRequestException")


def test_send_object_malware_scan_needs_its_iam_grant(stack: LocalProcess) -> None:
    iam = admin(stack, "iam")
    iam.create_user(UserName="scan-requester")
    key = iam.create_access_key(UserName="scan-requester")["AccessKey"]
    guardduty = boto3.client(
        "guardduty",
        region_name=REGION,
        endpoint_url=stack.aws_endpoint,
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        config=Config(retries={"max_attempts": 1}),
    )
    s3_object = {"Bucket": _bucket(stack), "Key": "uploads/clean.txt"}

    status, code, message = _refusal(lambda: guardduty.send_object_malware_scan(S3Object=s3_object))
    assert (status, code) == (403, "AccessDeniedException")
    assert message == (
        "User: arn:aws:iam::123456789012:user/scan-requester is not authorized to perform: "
        "guardduty:SendObjectMalwareScan because no identity-based policy allows the "
        "guardduty:SendObjectMalwareScan action"
    )
    grant = {"Effect": "Allow", "Action": "guardduty:SendObjectMalwareScan", "Resource": "*"}
    iam.put_user_policy(
        UserName="scan-requester",
        PolicyName="scan",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [grant]}),
    )
    assert guardduty.send_object_malware_scan(S3Object=s3_object)["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_ctrl_c_stops_the_runtime_and_its_scans(stack: LocalProcess) -> None:
    admin(stack, "s3").put_object(Bucket=_bucket(stack), Key="uploads/last.txt", Body=b"last")

    assert stack.interrupt(timeout=20) == 0, stack.output()
    assert "Traceback" not in stack.output()


# ------------------------------------------------------------------ copies with a mistake


def test_a_plan_role_without_s3_get_object_gets_access_denied(tmp_path: Path) -> None:
    stack = start(tmp_path, replace(READ_GRANT, "                Action: [s3:GetObjectAcl]\n"))
    try:
        stored = admin(stack, "s3").put_object(Bucket=_bucket(stack), Key="uploads/a.txt", Body=b"a")

        [event] = GuardDutyEvents(stack).wait("uploads/a.txt")

        assert _status(event) == ("SKIPPED", "ACCESS_DENIED")
        assert _tags(stack, "uploads/a.txt", stored["VersionId"]) == {
            "GuardDutyMalwareScanStatus": "ACCESS_DENIED"
        }
    finally:
        stack.stop()


def test_without_clamd_the_scan_fails_and_a_role_that_may_not_tag_fails_the_post_scan_action(
    tmp_path: Path,
) -> None:
    read_only = "                Action: [s3:GetObjectTagging, s3:GetObjectVersionTagging]\n"
    stack = start(tmp_path, replace(TAG_GRANT, read_only), extra_args=("--no-clamd",))
    try:
        stored = admin(stack, "s3").put_object(Bucket=_bucket(stack), Key="uploads/a.txt", Body=b"a")
        guardduty_events = GuardDutyEvents(stack)

        [result] = guardduty_events.wait("uploads/a.txt")
        [failure] = guardduty_events.wait("uploads/a.txt", detail_type=events.POST_SCAN_ACTION_FAILED)

        assert _status(result) == ("FAILED", "FAILED")
        assert failure["detail"]["postScanActions"] == [
            {"actionType": "TAGGING", "failureReason": "ACCESS_DENIED"}
        ]
        assert failure["detail"]["s3ObjectDetails"]["versionId"] == stored["VersionId"]
        assert _tags(stack, "uploads/a.txt", stored["VersionId"]) == {}
        assert "no clamd: every scan FAILED" in stack.output()
    finally:
        stack.stop()


def test_a_plan_whose_role_guardduty_cannot_assume_stops_the_deployment(tmp_path: Path) -> None:
    template = write_template(
        tmp_path, replace(TRUSTED_SERVICE, "              Service: ec2.amazonaws.com\n")
    )
    web, api, aws = free_ports(3)
    script = Path(sys.executable).with_name("filepipe")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "filepipe.cli"]

    finished = subprocess.run(
        [
            *command,
            "local",
            *("--port", str(web), "--api-port", str(api), "--aws-port", str(aws)),
            *("--state-dir", str(tmp_path / "state"), "--template", str(template)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert finished.returncode == 1
    assert "is ready" not in finished.stdout
    assert (
        "UploadsProtectionPlan: GuardDuty refuses it (BadRequestException): GuardDuty cannot assume the role"
        in finished.stderr
    )
    assert (
        "malware-protection-plan.guardduty.amazonaws.com is not authorized to perform: sts:AssumeRole"
        in finished.stderr
    )
