"""Email is opt-in; its SES identities start unverified locally, as on AWS, until an operator verifies."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from filepipe.cli import build_parser, main
from filepipe.local.provision.provisioner import provision
from filepipe.local.server import LocalOptions, LocalRuntime
from filepipe.local.stack.model import Stack
from filepipe.runtime_state import DEMO_EMAIL
from filepipe.ses import email_setup_notes, verify
from filepipe.template import Template, load_template

REGION = "us-east-1"
SENDER = "filepipe@example.com"


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template(region=REGION)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws(config={"lambda": {"use_docker": False}}):
        yield


def _send(sender: str) -> None:
    client("ses").send_email(
        Source=sender,
        Destination={"ToAddresses": [DEMO_EMAIL]},
        Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}},
    )


def test_a_configured_sender_gets_an_identity_that_refuses_to_send_until_verified(
    aws: None, template: Template
) -> None:
    stack = provision(client, template, "filepipe-local", REGION, parameters={"SenderEmail": SENDER})

    assert stack.physical["SenderIdentity"] == SENDER
    assert any("SES identities start unverified" in w and "SenderIdentity" in w for w in stack.warnings)
    assert client("ses").list_identities()["Identities"] == []
    with pytest.raises(ClientError) as refused:
        _send(SENDER)
    assert refused.value.response["Error"]["Code"] == "MessageRejected"

    verify(client("ses"), [SENDER])  # the operator's click on SES's link
    _send(SENDER)


def test_without_a_sender_there_is_no_identity_and_the_function_sends_no_email(
    aws: None, template: Template
) -> None:
    stack = provision(client, template, "filepipe-local", REGION)

    assert "SenderIdentity" not in stack.physical
    assert stack.functions["NotifyFunction"].environment["SENDER_EMAIL"] == ""


def _runtime(tmp_path: Path, template: Template, sender: str, verified: tuple[str, ...]) -> LocalRuntime:
    runtime = LocalRuntime(LocalOptions(state_dir=tmp_path, verified_emails=verified), out=io.StringIO())
    runtime.stack = Stack(
        "filepipe-local", REGION, template, template.parameter_values({"SenderEmail": sender})
    )
    runtime.client = client  # type: ignore[method-assign]
    return runtime


def test_the_runtime_verifies_only_the_addresses_it_is_given(
    aws: None, template: Template, tmp_path: Path
) -> None:
    runtime = _runtime(tmp_path, template, SENDER, (DEMO_EMAIL,))
    runtime._prepare_accounts()

    assert client("ses").list_identities()["Identities"] == [DEMO_EMAIL]  # not the template's sender
    assert f"from {SENDER}, NOT verified" in runtime._email_note()
    assert f"filepipe ses verify {SENDER}" in runtime._email_note()
    assert "(verified)" in _runtime(tmp_path, template, SENDER, (SENDER,))._email_note()
    assert _runtime(tmp_path, template, "", ())._email_note().startswith("off")


def test_the_local_command_takes_addresses_to_verify() -> None:
    args = build_parser().parse_args(["local", "--verify-email", SENDER, "--verify-email", DEMO_EMAIL])
    assert args.verify_email == [SENDER, DEMO_EMAIL]
    assert build_parser().parse_args(["local"]).verify_email == []


def test_ses_verify_without_a_running_stack_says_how_to_start_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ses", "verify", SENDER, "--state-dir", str(tmp_path)]) == 1
    assert "make local" in capsys.readouterr().err


# ------------------------------------------------------------------ after `make deploy`
def _deployed(sender: str) -> None:
    body = {
        "Parameters": {"SenderEmail": {"Type": "String", "Default": ""}},
        "Resources": {
            "Marker": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {"Name": "/filepipe/deployed", "Type": "String", "Value": "x"},
            }
        },
    }
    client("cloudformation").create_stack(
        StackName="filepipe",
        TemplateBody=json.dumps(body),
        Parameters=[{"ParameterKey": "SenderEmail", "ParameterValue": sender}],
    )


class Sesv2:
    """SES v2's GetAccount as AWS answers it (moto has no GetAccount)."""

    def __init__(self, production: bool) -> None:
        self._production = production

    def get_account(self) -> dict[str, Any]:
        quota = {"Max24HourSend": 200.0, "MaxSendRate": 1.0, "SentLast24Hours": 0.0}
        return {"ProductionAccessEnabled": self._production, "SendQuota": quota}


def _clients(production: bool | None) -> Any:
    def factory(service: str) -> Any:
        if service == "sesv2" and production is not None:
            return Sesv2(production)
        return client(service)

    return factory


def test_after_a_deploy_without_a_sender_the_notes_say_email_is_off(aws: None) -> None:
    _deployed("")
    notes = "\n".join(email_setup_notes(_clients(production=None), "filepipe", REGION))
    assert "Email: off" in notes
    assert "FileProcessed" in notes
    assert "SENDER_EMAIL=" in notes


def test_after_a_deploy_with_a_sender_the_notes_say_how_to_verify_it_and_what_the_sandbox_means(
    aws: None,
) -> None:
    _deployed(SENDER)
    notes = "\n".join(email_setup_notes(_clients(production=False), "filepipe", REGION))

    assert f"{SENDER} is not verified yet" in notes
    assert f"aws ses verify-email-identity --region {REGION} --email-address {SENDER}" in notes
    assert "NotificationsFailed" in notes
    assert "This account is in the SES sandbox (here: 200 messages a day, 1 a second)" in notes
    assert "only to verified addresses" in notes
    assert "request-production-access" in notes

    verify(client("ses"), [SENDER])
    notes = "\n".join(email_setup_notes(_clients(production=True), "filepipe", REGION))
    assert f"{SENDER} is verified" in notes
    assert "production access" in notes
    assert "sandbox" not in notes


def test_when_ses_does_not_say_whether_the_account_is_in_the_sandbox_the_notes_explain_it_anyway(
    aws: None,
) -> None:
    _deployed(SENDER)
    notes = "\n".join(email_setup_notes(_clients(production=None), "filepipe", REGION))  # moto: no GetAccount
    assert "If this account is still in the SES sandbox" in notes
