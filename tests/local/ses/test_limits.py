"""SES's identity check: a verified sender and, in the sandbox new accounts start in, verified recipients."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from typing import Any

import boto3
import pytest
import requests
from botocore.exceptions import ClientError
from moto import mock_aws

from filepipe.bench.e2e import sample_jpeg
from filepipe.cli import build_parser
from filepipe.local import moto_patches
from filepipe.local.client import BrowserClient
from filepipe.local.server import LocalOptions
from filepipe.local.services.ses.patches import ses_sandbox
from filepipe.runtime_state import DEMO_EMAIL, DEMO_PASSWORD
from tests.local.conftest import DEMO_SENDER, LocalProcess

REGION = "us-east-1"
SENDER = "filepipe@example.com"
OWNER = "owner@example.com"


@pytest.fixture
def ses_account(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[bool], Any]]:
    """An SES client of a moto account with SES's identity check installed as `filepipe local` installs it."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    uninstall: list[Callable[[], None]] = []

    def account(production_access: bool) -> Any:
        uninstall.append(moto_patches.install(ses_sandbox, production_access))
        ses = boto3.client("ses", region_name=REGION)
        ses.verify_email_identity(EmailAddress=SENDER)
        return ses

    with mock_aws():
        yield account
    for remove in reversed(uninstall):
        remove()


def send(ses: Any, to: str, source: str = SENDER) -> dict[str, Any]:
    response: dict[str, Any] = ses.send_email(
        Source=source,
        Destination={"ToAddresses": [to]},
        Message={"Subject": {"Data": "Your file"}, "Body": {"Text": {"Data": "is ready"}}},
    )
    return response


def refusal(call: Callable[[], Any]) -> tuple[int, str, str]:
    with pytest.raises(ClientError) as refused:
        call()
    error = refused.value.response
    return error["ResponseMetadata"]["HTTPStatusCode"], error["Error"]["Code"], error["Error"]["Message"]


def not_verified(*identities: str) -> str:
    return (
        "Email address is not verified. The following identities failed the check in region US-EAST-1: "
        + ", ".join(identities)
    )


def test_in_the_sandbox_an_unverified_recipient_is_refused_until_verified(
    ses_account: Callable[[bool], Any],
) -> None:
    ses = ses_account(False)
    assert refusal(lambda: send(ses, OWNER)) == (400, "MessageRejected", not_verified(OWNER))
    ses.verify_email_identity(EmailAddress=OWNER)
    assert send(ses, OWNER)["MessageId"]


def test_an_unverified_sender_is_named_with_the_recipients(ses_account: Callable[[bool], Any]) -> None:
    ses = ses_account(False)
    assert refusal(lambda: send(ses, OWNER, source="other@example.com")) == (
        400,
        "MessageRejected",
        not_verified("other@example.com", OWNER),
    )


def test_raw_and_sesv2_messages_get_the_same_check(ses_account: Callable[[bool], Any]) -> None:
    ses = ses_account(False)
    raw = EmailMessage()
    raw["From"], raw["To"], raw["Subject"] = SENDER, OWNER, "Your file"
    raw.set_content("is ready")
    assert refusal(lambda: ses.send_raw_email(RawMessage={"Data": raw.as_bytes()})) == (
        400,
        "MessageRejected",
        not_verified(OWNER),
    )
    sesv2 = boto3.client("sesv2", region_name=REGION)
    simple = {"Simple": {"Subject": {"Data": "Your file"}, "Body": {"Text": {"Data": "is ready"}}}}
    assert refusal(
        lambda: sesv2.send_email(
            FromEmailAddress=SENDER, Destination={"ToAddresses": [OWNER]}, Content=simple
        )
    ) == (400, "MessageRejected", not_verified(OWNER))


def test_a_verified_domain_and_the_mailbox_simulator_take_mail_in_the_sandbox(
    ses_account: Callable[[bool], Any],
) -> None:
    ses = ses_account(False)
    ses.verify_domain_identity(Domain="example.org")
    assert send(ses, "someone@example.org")["MessageId"]
    assert send(ses, "success@simulator.amazonses.com")["MessageId"]


def test_with_production_access_any_recipient_gets_mail_but_the_sender_is_still_checked(
    ses_account: Callable[[bool], Any],
) -> None:
    ses = ses_account(True)
    assert send(ses, OWNER)["MessageId"]
    assert refusal(lambda: send(ses, OWNER, source="other@example.com")) == (
        400,
        "MessageRejected",
        not_verified("other@example.com"),
    )


def test_the_local_runtime_starts_in_the_sandbox_unless_told_otherwise() -> None:
    assert LocalOptions().ses_production_access is False
    assert build_parser().parse_args(["local"]).ses_production_access is False
    assert build_parser().parse_args(["local", "--ses-production-access"]).ses_production_access is True


# ------------------------------------------------------------------ the mutation, end to end
@pytest.fixture(scope="module")
def sender_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalProcess]:
    # The operator verified the sender but not the owner's address (the demo user's), as a new account has it.
    running = LocalProcess(
        tmp_path_factory.mktemp("ses-sandbox"),
        ["--parameter", f"SenderEmail={DEMO_SENDER}", "--verify-email", DEMO_SENDER],
    )
    yield running
    running.stop()


def outbox(stack: LocalProcess) -> list[dict[str, Any]]:
    response = requests.get(f"{stack.aws_endpoint}/_filepipe/outbox", timeout=10)
    response.raise_for_status()
    messages: list[dict[str, Any]] = response.json()
    return messages


def logged_after(stack: LocalProcess, start: int, wanted: Callable[[str], bool], timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [line for line in stack.lines[start:] if wanted(line)]
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError("not logged:\n" + stack.output())


@pytest.mark.local
def test_an_owner_not_verified_in_the_sandbox_gets_no_email_and_the_file_is_still_ready(
    sender_only: LocalProcess,
) -> None:
    assert any("SES sandbox: only verified recipients get email" in line for line in sender_only.lines)
    browser = BrowserClient(sender_only.web_url)
    browser.sign_in(DEMO_EMAIL, DEMO_PASSWORD)
    start = len(sender_only.lines)
    file_id = browser.upload("photo.jpg", sample_jpeg(32 * 1024), "image/jpeg")
    assert browser.wait_final(file_id, timeout=30)["status"] == "READY"

    warning = logged_after(sender_only, start, lambda line: "owner not notified" in line)
    assert "NotifyFunction |" in warning
    assert f"MessageRejected: {not_verified(DEMO_EMAIL)}" in warning
    metric = logged_after(sender_only, start, lambda line: '"NotificationsFailed"' in line)
    assert json.loads(metric.split("| ", 1)[1])["channel"] == "email"
    assert outbox(sender_only) == []

    # The owner verifies their address (on AWS: the link SES emails them): the next outcome reaches them.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "filepipe.cli",
            "ses",
            "verify",
            DEMO_EMAIL,
            "--endpoint",
            sender_only.aws_endpoint,
        ],
        check=True,
        timeout=30,
        capture_output=True,
    )
    second = browser.upload("second.jpg", sample_jpeg(32 * 1024), "image/jpeg")
    assert browser.wait_final(second, timeout=30)["status"] == "READY"
    deadline = time.monotonic() + 10
    while not outbox(sender_only):
        assert time.monotonic() < deadline, "no email once the owner's address is verified"
        time.sleep(0.1)
    [message] = outbox(sender_only)
    assert message["to"] == [DEMO_EMAIL]
    assert "second.jpg" in message["subject"] + message["body"]
