"""S3 rules a deploy or a run meets: events reach EventBridge only from buckets that enable it, presigned
requests live at most a week and not past their expiry or their session's."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import boto3
import pytest
import requests
from botocore.config import Config

from filepipe.bench.e2e import sample_jpeg
from filepipe.local.client import BrowserClient
from filepipe.local.services.s3.post import S3PostError
from filepipe.local.services.s3.presigned import MAX_EXPIRES_SECONDS, check_lifetime
from filepipe.runtime_state import ACCESS_KEY_ID, DEMO_EMAIL, DEMO_PASSWORD, SECRET_ACCESS_KEY
from filepipe.template import ROOT, TEMPLATE_PATH
from tests.local.conftest import LocalProcess

pytestmark = pytest.mark.local

REGION = "us-east-1"
# How long the upload's run would take to start on this machine, many times over (it starts in ~0.2 s).
NO_RUN_WAIT_SECONDS = 5.0


def _without_eventbridge(text: str) -> str:
    enabled = (
        "      NotificationConfiguration:\n"
        "        EventBridgeConfiguration:\n"
        "          EventBridgeEnabled: true\n"
    )
    assert text.count(enabled) == 1
    return text.replace(enabled, enabled.replace("EventBridgeEnabled: true", "EventBridgeEnabled: false"))


@pytest.fixture(scope="module")
def stack_without_eventbridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalProcess]:
    # The mutation: the ingest bucket no longer sends its events to EventBridge.
    copy = tmp_path_factory.mktemp("template")
    for folder in ("functions", "statemachines"):
        (copy / folder).symlink_to(ROOT / folder, target_is_directory=True)
    (copy / "template.yaml").write_text(_without_eventbridge(TEMPLATE_PATH.read_text()))
    running = LocalProcess(
        tmp_path_factory.mktemp("no-eventbridge"), ["--template", str(copy / "template.yaml")]
    )
    yield running
    running.stop()


def client(stack: LocalProcess, service: str) -> Any:
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=stack.aws_endpoint,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        config=Config(signature_version="s3v4"),  # the template's buckets take SigV4 only, as the API signs
    )


def test_uploads_to_a_bucket_without_eventbridge_start_nothing(
    stack_without_eventbridge: LocalProcess,
) -> None:
    stack = stack_without_eventbridge
    # Nothing at start-up says the bucket's events are emulated or missing: on AWS nothing would say so.
    assert not [line for line in stack.lines if "NotificationConfiguration" in line]
    browser = BrowserClient(stack.web_url)
    browser.sign_in(DEMO_EMAIL, DEMO_PASSWORD)
    file_id = browser.upload("photo.jpg", sample_jpeg(32 * 1024), "image/jpeg")

    sfn = client(stack, "stepfunctions")
    machines = sfn.list_state_machines()["stateMachines"]
    deadline = time.monotonic() + NO_RUN_WAIT_SECONDS
    while time.monotonic() < deadline:
        for machine in machines:
            assert sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"] == []
        time.sleep(0.25)
    assert browser.call("GET", f"/files/{file_id}")["status"] == "UPLOADING"
    assert "StartFunction" not in stack.status()["invocations"]  # type: ignore[operator]

    # Enabled on the bucket (the fix, made here through the API), the next upload runs as usual.
    s3 = client(stack, "s3")
    ingest = next(b["Name"] for b in s3.list_buckets()["Buckets"] if "ingestbucket" in b["Name"])
    s3.put_bucket_notification_configuration(
        Bucket=ingest, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    second = browser.upload("second.jpg", sample_jpeg(32 * 1024), "image/jpeg")
    assert browser.wait_final(second, timeout=30)["status"] == "READY"
    assert browser.call("GET", f"/files/{file_id}")["status"] == "UPLOADING"


# ------------------------------------------------------------------ presigned requests
@pytest.fixture(scope="module")
def stored_object(stack_without_eventbridge: LocalProcess) -> tuple[Any, str]:
    s3 = client(stack_without_eventbridge, "s3")
    bucket = next(b["Name"] for b in s3.list_buckets()["Buckets"] if "filesbucket" in b["Name"])
    s3.put_object(Bucket=bucket, Key="files/owner/file/original", Body=b"clean bytes")
    return s3, bucket


def presigned(s3: Any, bucket: str, seconds: int, signed_at: datetime | None = None) -> str:
    params = {"Bucket": bucket, "Key": "files/owner/file/original"}
    if signed_at is None:
        url: str = s3.generate_presigned_url("get_object", Params=params, ExpiresIn=seconds)
        return url
    # The signer's clock at the time it signed: the URL was handed out that long ago.
    with mock.patch("botocore.auth.get_current_datetime", return_value=signed_at.replace(tzinfo=None)):
        url = s3.generate_presigned_url("get_object", Params=params, ExpiresIn=seconds)
    return url


def test_a_presigned_url_lives_at_most_a_week(stored_object: tuple[Any, str]) -> None:
    s3, bucket = stored_object
    assert requests.get(presigned(s3, bucket, MAX_EXPIRES_SECONDS), timeout=10).content == b"clean bytes"
    # The mutation: a download link made to last as long as a 30-day share.
    refused = requests.get(presigned(s3, bucket, 30 * 24 * 3600), timeout=10)
    assert refused.status_code == 400
    assert "<Code>AuthorizationQueryParametersError</Code>" in refused.text
    assert (
        "<Message>X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires "
        "must be less than 604800 seconds</Message>" in refused.text
    )


def test_an_expired_presigned_url_is_refused_as_s3_refuses_it(stored_object: tuple[Any, str]) -> None:
    s3, bucket = stored_object
    ten_minutes_ago = datetime.now(UTC) - timedelta(minutes=10)
    refused = requests.get(presigned(s3, bucket, 300, signed_at=ten_minutes_ago), timeout=10)
    assert refused.status_code == 403
    assert "<Code>AccessDenied</Code><Message>Request has expired</Message>" in refused.text
    assert "<X-Amz-Expires>300</X-Amz-Expires>" in refused.text
    expired_at = (ten_minutes_ago + timedelta(seconds=300)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f"<Expires>{expired_at}</Expires>" in refused.text
    still_valid = requests.get(presigned(s3, bucket, 900, signed_at=ten_minutes_ago), timeout=10)
    assert still_valid.content == b"clean bytes"


def test_a_url_signed_with_a_session_ends_with_the_session() -> None:
    signed = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    query = {
        "X-Amz-Credential": "ASIASESSION/20261122/us-east-1/s3/aws4_request",
        "X-Amz-Date": "20261122T120000Z",
        "X-Amz-Expires": "3600",
        "X-Amz-Security-Token": "token",
        "X-Amz-Signature": "0" * 64,
    }
    session_ends = signed + timedelta(minutes=15)
    sessions = {"ASIASESSION": session_ends}.get
    check_lifetime(query, signed + timedelta(minutes=14), sessions)
    with pytest.raises(S3PostError) as refused:
        check_lifetime(query, session_ends, sessions)
    assert (refused.value.status, refused.value.code, refused.value.message) == (
        400,
        "ExpiredToken",
        "The provided token has expired.",
    )
