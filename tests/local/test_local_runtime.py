"""`filepipe local` end to end, over HTTP as a browser uses it: sign in, upload, process, download, share."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from PIL import Image

from filepipe.bench.e2e import sample_jpeg
from filepipe.clamd import eicar_bytes
from filepipe.local.client import ApiError, BrowserClient
from filepipe.runtime_state import ACCESS_KEY_ID, DEMO_EMAIL, DEMO_PASSWORD, SECRET_ACCESS_KEY
from filepipe.template import Resolver, load_template
from tests.local.conftest import LocalProcess, alive, descendants, rss_bytes

pytestmark = pytest.mark.local

READY_WITHIN_SECONDS = 10.0
IDLE_RSS_LIMIT = 500 * 1024 * 1024


@pytest.fixture(scope="module")
def browser(local_stack: LocalProcess) -> BrowserClient:
    client = BrowserClient(local_stack.web_url)
    client.sign_in(DEMO_EMAIL, DEMO_PASSWORD)
    return client


@pytest.fixture(scope="module")
def aws(local_stack: LocalProcess) -> boto3.session.Session:
    return boto3.session.Session(
        aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY, region_name="us-east-1"
    )


def test_starts_quickly_and_small(local_stack: LocalProcess) -> None:
    status = local_stack.status()
    pids = [int(pid) for pid in status["pids"]]  # type: ignore[attr-defined]
    total = sum(rss_bytes(pid) for pid in pids)
    print(
        f"\nstart-up: {local_stack.startup_seconds:.2f} s to ready ({local_stack.wall_startup_seconds:.2f} s "
        f"wall, with interpreter start); idle RSS of {len(pids)} processes: {total / 2**20:.0f} MB"
    )
    assert local_stack.process.pid in pids
    assert total <= IDLE_RSS_LIMIT
    banner = local_stack.output()
    assert local_stack.web_url in banner
    assert local_stack.aws_endpoint in banner
    assert f"{DEMO_EMAIL} / {DEMO_PASSWORD}" in banner


def test_config_json_describes_the_local_stack(local_stack: LocalProcess, browser: BrowserClient) -> None:
    config = browser.config
    assert config["apiUrl"] == local_stack.api_url
    assert config["cognitoEndpoint"].rstrip("/") == local_stack.aws_endpoint
    assert config["region"] == "us-east-1"
    assert config["userPoolId"].startswith("us-east-1_")
    assert config["userPoolClientId"]
    assert config["maxFileBytes"] == 1073741824
    assert "image/jpeg" in config["allowedTypes"]


def _counts(local_stack: LocalProcess) -> dict[str, dict[str, int]]:
    status = local_stack.status()
    return {kind: status[kind] for kind in ("requests", "invocations")}  # type: ignore[misc]


def _since(before: dict[str, int], now: dict[str, int]) -> dict[str, int]:
    return {name: count - before.get(name, 0) for name, count in now.items() if count > before.get(name, 0)}


def test_status_counts_the_aws_requests_and_invocations_a_file_makes(
    local_stack: LocalProcess, browser: BrowserClient
) -> None:
    before = _counts(local_stack)
    file_id = browser.upload("counted.jpg", sample_jpeg(64 * 1024), "image/jpeg")
    assert browser.wait_final(file_id, timeout=READY_WITHIN_SECONDS)["status"] == "READY"
    deadline = time.monotonic() + READY_WITHIN_SECONDS
    while True:  # the owner is emailed after the record says READY
        now = _counts(local_stack)
        made = _since(before["requests"], now["requests"])
        invoked = _since(before["invocations"], now["invocations"])
        if invoked.get("NotifyFunction", 0) >= 1 and made.get("ses SendEmail", 0) >= 1:
            break
        assert time.monotonic() < deadline, f"no email was sent: {made} {invoked}"
        time.sleep(0.2)
    print(f"\none file: {sum(made.values())} AWS requests {made}")
    print(f"one file: {sum(invoked.values())} invocations {invoked}")
    assert made["s3 PostObject"] == 1
    assert made["states StartExecution"] == 1
    assert made["dynamodb PutItem"] == 1  # the upload ticket's record
    assert made["dynamodb UpdateItem"] >= 3  # processing, outcome, notification claim
    assert made["s3 GET"] >= 2  # validate and the thumbnails read the original (GuardDuty, scanning, too)
    assert made["ses SendEmail"] == 1
    for step in ("Start", "Validate", "Thumbnails", "Metadata", "Promote", "Notify"):
        assert invoked[f"{step}Function"] == 1, invoked
    # The template's default scanner, GuardDuty: the verdict function hears from the run awaiting the
    # verdict and from GuardDuty's result event, and hands the verdict over once; no scan function runs.
    assert invoked["ScanVerdictFunction"] == 2, invoked
    assert made["states SendTaskSuccess"] == 1
    assert "ScanFunction" not in invoked
    assert invoked["RecordFunction"] == 2  # processing, then the outcome
    assert invoked["ApiFunction"] >= 2  # the upload ticket, then the polls


def test_photo_is_processed_downloaded_and_shared(local_stack: LocalProcess, browser: BrowserClient) -> None:
    photo = sample_jpeg(5 * 1024 * 1024)
    started = time.monotonic()
    file_id = browser.upload("holiday.jpg", photo, "image/jpeg")
    record = browser.wait_final(file_id, timeout=READY_WITHIN_SECONDS)
    elapsed = time.monotonic() - started
    print(f"\n{len(photo) / 2**20:.1f} MB JPEG: upload to READY in {elapsed:.2f} s")
    assert record["status"] == "READY", record
    assert elapsed <= READY_WITHIN_SECONDS

    original = browser.download(record["downloadUrl"])
    assert original.content == photo
    assert original.headers["Content-Type"] == "image/jpeg"
    assert original.headers["Content-Disposition"].startswith("attachment")
    thumbnail = record["thumbnails"][0]
    thumb = browser.download(thumbnail["url"])
    with Image.open(io.BytesIO(thumb.content)) as image:
        assert image.format == "WEBP"
        assert max(image.size) == thumbnail["size"]

    share = browser.call("POST", f"/files/{file_id}/shares", {"expiresInSeconds": 600}, expect=201)
    preview = browser.call("GET", f"/shares/{share['token']}", auth=False)
    assert preview["name"] == "holiday.jpg"
    link = browser.call("POST", f"/shares/{share['token']}/download", auth=False)
    assert browser.download(link["url"]).content == photo
    assert browser.request("POST", f"/files/{file_id}/shares", {}, auth=False).status_code == 401


def test_executable_named_jpg_is_rejected(browser: BrowserClient) -> None:
    program = (
        b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 44 + b"\x80\x00\x00\x00"
    )
    program += b"\x00" * 64 + b"PE\x00\x00" + os.urandom(4096)
    file_id = browser.upload("cat.jpg", program, "image/jpeg")
    record = browser.wait_final(file_id, timeout=READY_WITHIN_SECONDS)
    assert record["status"] == "REJECTED", record
    assert "downloadUrl" not in record


def test_eicar_is_quarantined_and_the_owner_is_told(
    local_stack: LocalProcess, browser: BrowserClient
) -> None:
    file_id = browser.upload("notes.txt", eicar_bytes(), "text/plain")
    record = browser.wait_final(file_id, timeout=READY_WITHIN_SECONDS)
    assert record["status"] == "QUARANTINED", record
    assert "downloadUrl" not in record

    def told() -> bool:
        outbox = subprocess.run(
            [
                sys.executable,
                "-m",
                "filepipe.cli",
                "outbox",
                "--json",
                "--endpoint",
                local_stack.aws_endpoint,
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        messages = json.loads(outbox.stdout)
        return any(DEMO_EMAIL in m["to"] and "notes.txt" in m["subject"] + m["body"] for m in messages)

    # The record turns QUARANTINED one step before the notify step sends the email.
    deadline = time.monotonic() + 10
    while not told():
        assert time.monotonic() < deadline, "no email about the quarantined file in the outbox"
        time.sleep(0.2)
    printed = subprocess.run(
        [sys.executable, "-m", "filepipe.cli", "outbox", "--endpoint", local_stack.aws_endpoint],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert f"To:      {DEMO_EMAIL}" in printed.stdout


def test_post_beyond_the_policy_is_refused_and_nothing_runs(
    local_stack: LocalProcess, browser: BrowserClient, aws: boto3.session.Session
) -> None:
    data = sample_jpeg(256 * 1024)
    ticket = browser.request_upload("small.jpg", len(data), "image/jpeg")
    response = browser.post_file(ticket, data + b"\x00" * 1024, "image/jpeg")
    assert response.status_code == 400
    assert "<Code>EntityTooLarge</Code>" in response.text

    forged = dict(ticket.fields, key=ticket.fields["key"] + "-other")
    response = browser.post_file(type(ticket)(ticket.file_id, ticket.url, forged), data, "image/jpeg")
    assert response.status_code == 403
    assert "<Code>AccessDenied</Code>" in response.text

    time.sleep(1.5)  # long enough for an upload event to have started processing
    assert browser.call("GET", f"/files/{ticket.file_id}")["status"] == "UPLOADING"
    s3 = aws.client("s3", endpoint_url=local_stack.aws_endpoint)
    bucket = ticket.url.rstrip("/").rsplit("/", 1)[-1]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=ticket.fields["key"])
    assert listed.get("KeyCount", 0) == 0


def test_sdk_and_cli_see_what_the_template_declares(
    local_stack: LocalProcess, aws: boto3.session.Session
) -> None:
    template = load_template()
    holds = Resolver(template.parameter_values(), {}, str, lambda *_: "", template.conditions).condition
    # The buckets of the template's default parameters (the definitions bucket is ClamAV mode's only).
    declared_buckets = [
        logical
        for logical, resource in template.of_type("AWS::S3::Bucket").items()
        if "Condition" not in resource or holds(resource["Condition"])
    ]
    buckets = {
        b["Name"] for b in aws.client("s3", endpoint_url=local_stack.aws_endpoint).list_buckets()["Buckets"]
    }
    assert len([b for b in buckets if b.startswith("filepipe-local-")]) == len(declared_buckets)
    for logical in declared_buckets:
        assert any(logical.lower() in name for name in buckets), logical

    tables = aws.client("dynamodb", endpoint_url=local_stack.aws_endpoint).list_tables()["TableNames"]
    assert any("FilesTable" in name for name in tables)
    machines = aws.client("stepfunctions", endpoint_url=local_stack.aws_endpoint).list_state_machines()
    assert "filepipe-local-ProcessUpload" in {m["name"] for m in machines["stateMachines"]}

    cli = Path(sys.executable).with_name("aws")
    environment = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "anything",
        "AWS_SECRET_ACCESS_KEY": "anything",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    for arguments, expected in (
        (["s3api", "list-buckets"], "filepipe-local-ingestbucket"),
        (["dynamodb", "list-tables"], "FilesTable"),
        (["stepfunctions", "list-state-machines"], "filepipe-local-ProcessUpload"),
    ):
        result = subprocess.run(
            [str(cli), "--endpoint-url", local_stack.aws_endpoint, "--output", "json", *arguments],
            capture_output=True,
            text=True,
            timeout=60,
            env=environment,
            check=True,
        )
        assert expected in result.stdout


def test_signing_out_revokes_the_refresh_token_and_its_access_tokens(local_stack: LocalProcess) -> None:
    """The web UI signs out with Cognito's RevokeToken, which the local runtime answers as Cognito does."""
    user = BrowserClient(local_stack.web_url)
    client_id = user.config["userPoolClientId"]
    password_auth = {
        "AuthFlow": "USER_PASSWORD_AUTH",
        "ClientId": client_id,
        "AuthParameters": {"USERNAME": DEMO_EMAIL, "PASSWORD": DEMO_PASSWORD},
    }
    signed_in = user.cognito("InitiateAuth", password_auth)["AuthenticationResult"]
    refresh = {
        "AuthFlow": "REFRESH_TOKEN_AUTH",
        "ClientId": client_id,
        "AuthParameters": {"REFRESH_TOKEN": signed_in["RefreshToken"]},
    }
    assert user.cognito("InitiateAuth", refresh)["AuthenticationResult"]["AccessToken"]
    assert user.cognito("GetUser", {"AccessToken": signed_in["AccessToken"]})["Username"]

    with pytest.raises(ApiError, match="UnsupportedTokenTypeException"):
        user.cognito("RevokeToken", {"Token": signed_in["AccessToken"], "ClientId": client_id})
    with pytest.raises(ApiError, match="UnauthorizedException"):
        user.cognito("RevokeToken", {"Token": signed_in["RefreshToken"], "ClientId": "not-this-client"})
    assert user.cognito("RevokeToken", {"Token": signed_in["RefreshToken"], "ClientId": client_id}) == {}

    with pytest.raises(ApiError, match="NotAuthorizedException"):
        user.cognito("InitiateAuth", refresh)
    with pytest.raises(ApiError, match="NotAuthorizedException"):
        user.cognito("GetUser", {"AccessToken": signed_in["AccessToken"]})
    # Revoking again is not an error, and other sessions of the same user go on.
    assert user.cognito("RevokeToken", {"Token": signed_in["RefreshToken"], "ClientId": client_id}) == {}
    assert user.cognito("InitiateAuth", password_auth)["AuthenticationResult"]["RefreshToken"]


def test_ctrl_c_stops_everything_quickly(local_stack: LocalProcess) -> None:
    """Runs last in this module: it stops the shared runtime."""
    processes = descendants(local_stack.process.pid)
    assert processes, "the runtime should have worker processes and clamd by now"
    began = time.monotonic()
    code = local_stack.interrupt(timeout=2.0)
    took = time.monotonic() - began
    print(f"\nCtrl-C: stopped in {took:.2f} s")
    assert code == 0, local_stack.output()
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline and any(alive(pid) for pid in processes):
        time.sleep(0.05)
    assert not [pid for pid in processes if alive(pid)]
    assert "filepipe local: stopped" in local_stack.output()
