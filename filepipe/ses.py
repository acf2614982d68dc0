"""The operator's SES steps: verify identities on the local runtime; after a deploy, what is left to do."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

ClientFactory = Callable[[str], Any]

PRODUCTION_ACCESS_DOCS = "https://docs.aws.amazon.com/ses/latest/dg/request-production-access.html"


def verify(ses: Any, addresses: list[str]) -> None:
    """Verify each address: on the local runtime this is the click on the link SES emails on AWS."""
    for address in addresses:
        ses.verify_email_identity(EmailAddress=address)


def stack_sender(cloudformation: Any, stack: str) -> str:
    """The SenderEmail parameter the stack was deployed with ("" when email is off)."""
    [described] = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    values = {p["ParameterKey"]: p.get("ParameterValue", "") for p in described.get("Parameters", [])}
    return str(values.get("SenderEmail", ""))


def _verification_status(ses: Any, sender: str) -> str:
    attributes = ses.get_identity_verification_attributes(Identities=[sender])["VerificationAttributes"]
    return str(attributes.get(sender, {}).get("VerificationStatus", "NotStarted"))


def _sandbox(sesv2: Any) -> tuple[bool | None, dict[str, Any]]:
    """Whether the account is in the SES sandbox, and its send quota; None where SES does not say."""
    try:
        account = sesv2.get_account()
    except (ClientError, BotoCoreError, NotImplementedError):  # no permission, or a service without it
        return None, {}
    return not account.get("ProductionAccessEnabled", False), dict(account.get("SendQuota", {}))


def email_setup_notes(clients: ClientFactory, stack: str, region: str) -> list[str]:
    """What an operator must still do for the stack's email, in plain lines."""
    sender = stack_sender(clients("cloudformation"), stack)
    if not sender:
        return [
            "Email: off (SenderEmail is empty). Owners see each outcome in the web UI, and every outcome is "
            "published as a FileProcessed event on the stack's event bus.",
            "  To email owners: make deploy STACK=... SENDER_EMAIL=you@example.com",
        ]
    lines = [f"Email: from {sender} (SES, region {region})."]
    status = _verification_status(clients("ses"), sender)
    if status == "Success":
        lines.append(f"  {sender} is verified.")
    else:
        lines += [
            f"  {sender} is not verified yet ({status}): SES sent a verification link to it; open it "
            "(it expires after 24 hours). Until then SES refuses every email: the files are still processed,",
            "  each refusal is logged and counted (metric NotificationsFailed). To send the link again:",
            f"    aws ses verify-email-identity --region {region} --email-address {sender}",
        ]
    in_sandbox, quota = _sandbox(clients("sesv2"))
    if in_sandbox is False:
        lines.append("  The account has SES production access: any recipient can be emailed.")
        return lines
    limits = ""
    if quota:
        limits = (
            f" (here: {quota.get('Max24HourSend', '?'):g} messages a day, "
            f"{quota.get('MaxSendRate', '?'):g} a second)"
        )
    prefix = "This account is in" if in_sandbox else "If this account is still in"
    lines += [
        f"  {prefix} the SES sandbox{limits}: SES delivers only to verified addresses, so each user who "
        "should get email verifies theirs first:",
        f"    aws ses verify-email-identity --region {region} --email-address user@example.com",
        "  Mail to anyone else is refused and counted; nothing else changes. To email every user, request "
        f"production access (SES console, Account dashboard): {PRODUCTION_ACCESS_DOCS}",
    ]
    return lines
