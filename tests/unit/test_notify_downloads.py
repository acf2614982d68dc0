"""Download notices by email: once per download the link asks about, never twice for one event."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from typing import Any

import pytest

from common.errors import ServiceThrottled
from common.shares import ShareRecords
from filepipe.local.services.awslambda.invoke import invoke_in_process
from notify.downloads import notify_download
from notify.logic import EmailRefused, Result
from tests.stack import StackFixture

OWNER = "6a3e1c2b-9d8f-4e7a-b5c4-3d2e1f0a9b8c"
OWNER_EMAIL = "owner@example.com"
SENDER = "filepipe@example.com"
FILE_ID = "01JD8M3Q6W9Z2X4C5V7B8N0K1P"


class Outbox:
    def __init__(self, *failures: Exception | None) -> None:
        self.sent: list[tuple[str, str, str]] = []
        self._failures = list(failures)

    def send(self, to: str, subject: str, body: str) -> None:
        failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            raise failure
        self.sent.append((to, subject, body))


@pytest.fixture
def shares(stack: StackFixture) -> ShareRecords:
    return ShareRecords(stack.client("dynamodb"), stack.physical("FilesTable"))


def _share(shares: ShareRecords, share_id: str, notify: str | None, email: str | None = OWNER_EMAIL) -> None:
    shares.create(
        {
            "shareId": share_id,
            "fileIds": [FILE_ID],
            "ownerId": OWNER,
            "createdAt": "2031-01-01T00:00:00.000Z",
            "expiresAt": "2031-01-08T00:00:00.000Z",
            "expiresAtEpoch": 1925337600,
            "expiryCapEpoch": 1925337600,
            "notifyOn": notify,
            "ownerEmail": email,
        }
    )


def _downloaded(shares: ShareRecords, share_id: str, download: int) -> dict[str, Any]:
    entry = {
        "download": download,
        "at": f"2031-01-0{download}T10:00:00.000Z",
        "fileId": FILE_ID,
        "fileName": "report.pdf",
        "browser": "Firefox",
        "platform": "Windows",
        "country": "NL",
    }
    shares.log_download(share_id, entry, 1925337600)
    return {"shareId": share_id, "ownerId": OWNER, "notifyOn": "EVERY", **entry}


def test_every_download_is_emailed_once_however_often_its_event_comes(shares: ShareRecords) -> None:
    share_id = "a" * 64
    _share(shares, share_id, "EVERY")
    outbox = Outbox()
    first, second = _downloaded(shares, share_id, 1), _downloaded(shares, share_id, 2)

    results = [notify_download(detail, shares, outbox).result for detail in (first, second, first, second)]

    assert results == [Result.SENT, Result.SENT, Result.ALREADY_SENT, Result.ALREADY_SENT]
    assert [(to, subject) for to, subject, _ in outbox.sent] == [
        (OWNER_EMAIL, "Your shared file report.pdf was downloaded")
    ] * 2
    body = outbox.sent[0][2]
    assert "2031-01-01T10:00:00.000Z" in body
    assert "Firefox on Windows, from NL" in body


def test_first_download_only_and_links_that_stopped_asking(shares: ShareRecords) -> None:
    first_only, stopped = "b" * 64, "c" * 64
    _share(shares, first_only, "FIRST")
    _share(shares, stopped, None)
    outbox = Outbox()

    answers = [
        notify_download(_downloaded(shares, first_only, 1), shares, outbox),
        notify_download(_downloaded(shares, first_only, 2), shares, outbox),
        notify_download(_downloaded(shares, stopped, 1), shares, outbox),
        notify_download(_downloaded(shares, "d" * 64, 1), shares, outbox),  # revoked meanwhile
    ]

    assert [answer.result for answer in answers] == [Result.SENT, Result.OFF, Result.OFF, Result.OFF]
    assert len(outbox.sent) == 1


def test_no_sender_or_no_address_sends_nothing(shares: ShareRecords) -> None:
    with_address, without = "e" * 64, "f" * 64
    _share(shares, with_address, "EVERY")
    _share(shares, without, "EVERY", email=None)

    no_sender = notify_download(_downloaded(shares, with_address, 1), shares, None)
    no_address = notify_download(_downloaded(shares, without, 1), shares, Outbox())

    assert (no_sender.result, no_sender.reason) == (Result.OFF, "no sender is configured")
    assert (no_address.result, no_address.reason) == (Result.OFF, "the owner has no email address")


def test_a_refusal_is_reported_and_a_throttle_is_retried_with_the_claim_given_back(
    shares: ShareRecords,
) -> None:
    share_id = "1" * 64
    _share(shares, share_id, "EVERY")
    detail = _downloaded(shares, share_id, 1)
    refused = _downloaded(shares, share_id, 2)
    outbox = Outbox(ServiceThrottled("SES throttled (injected)"), None, EmailRefused("MessageRejected", "no"))

    with pytest.raises(ServiceThrottled):
        notify_download(detail, shares, outbox)
    retried = notify_download(detail, shares, outbox)
    refusal = notify_download(refused, shares, outbox)

    assert retried.result is Result.SENT
    assert (refusal.result, refusal.failed) == (Result.REFUSED, True)
    assert notify_download(refused, shares, outbox).result is Result.ALREADY_SENT


def test_the_notify_function_takes_share_download_events_from_the_bus(
    stack: StackFixture, shares: ShareRecords
) -> None:
    ses = stack.client("ses")
    for identity in (SENDER, OWNER_EMAIL):
        ses.verify_email_identity(EmailAddress=identity)
    stack.use_functions("NotifyFunction", SENDER_EMAIL=SENDER)
    share_id = "2" * 64
    _share(shares, share_id, "FIRST")
    event = {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "ShareDownloaded",
        "source": "filepipe",
        "account": "123456789012",
        "time": "2031-01-01T10:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": _downloaded(shares, share_id, 1),
    }
    printed = io.StringIO()

    with redirect_stdout(printed):
        first = invoke_in_process(stack.function("NotifyFunction"), event)
        again = invoke_in_process(stack.function("NotifyFunction"), event)

    assert json.loads(first.payload) == {"email": "sent"}
    assert json.loads(again.payload) == {"email": "already sent"}
    assert ses.get_send_quota()["SentLast24Hours"] == 1


def test_the_template_routes_share_downloads_from_the_bus_to_the_notify_function(template: Any) -> None:
    [rule] = [
        resource["Properties"]
        for resource in template.resources.values()
        if resource["Type"] == "AWS::Events::Rule"
        and "ShareDownloaded" in resource["Properties"]["EventPattern"].get("detail-type", [])
    ]
    share_api = template.resources["ShareApiFunction"]["Properties"]

    assert rule["EventPattern"] == {"source": ["filepipe"], "detail-type": ["ShareDownloaded"]}
    assert rule["EventBusName"] == share_api["Environment"]["Variables"]["EVENT_BUS_NAME"]
    assert [target["Arn"] for target in rule["Targets"]] == [{"Fn::GetAtt": ["NotifyFunction", "Arn"]}]
