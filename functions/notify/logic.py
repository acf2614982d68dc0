"""Tell the owner how processing ended: a FileProcessed event and, when configured, an email.

A notification never changes the file's outcome. Each channel is sent on its own, so one failing never
holds back the other, and remembered on the record so a retry or replay sends only what is still owed:
the email is claimed before it is sent (a person must not get it twice), the event is marked after it is
published (programs that read the bus expect at-least-once delivery, and it must not be lost).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from common.errors import ServiceThrottled, failure_reason
from common.model import Channel, FileRef, Status
from common.records import FileRecords

_SUBJECTS = {
    Status.READY: "Your file {name} is ready",
    Status.REJECTED: "Your file {name} was rejected",
    Status.QUARANTINED: "Your file {name} was quarantined",
}


class EmailRefused(Exception):
    """SES refused this message for good (unverified sender or recipient, paused sending, no permission)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class Mailer(Protocol):
    def send(self, to: str, subject: str, body: str) -> None: ...


class EventPublisher(Protocol):
    def publish(self, detail_type: str, detail: dict[str, Any]) -> None: ...


class Result(StrEnum):
    SENT = "sent"
    ALREADY_SENT = "already sent"
    OFF = "off"  # nothing to send on this channel: no sender configured or no address to send to
    REFUSED = "refused"  # the service refused it for good; counted, never retried
    MISSED = "missed"  # still unsent when the workflow's retries ran out; counted


@dataclass(frozen=True)
class Delivery:
    channel: Channel
    result: Result
    reason: str = ""

    @property
    def failed(self) -> bool:
        return self.result in (Result.REFUSED, Result.MISSED)


@dataclass(frozen=True)
class Notification:
    subject: str
    body: str
    detail: dict[str, Any]


def compose(record: dict[str, Any]) -> Notification:
    status = Status(record["status"])
    name = record.get("name", record["fileId"])
    subject = _SUBJECTS[status].format(name=name)
    lines = [f"File: {name}", f"Status: {status.value}"]
    if record.get("requestId"):
        lines.append("A guest sent it through one of your request links.")
    error = record.get("error")
    if error:
        lines.append(f"Reason: {error['message']}")
    if status is Status.READY:
        lines.append("You can download and share it from filepipe now.")
    detail = {
        "fileId": record["fileId"],
        "ownerId": record["ownerId"],
        "status": status.value,
        "name": name,
        "size": record.get("size"),
        "contentType": record.get("contentType"),
        "error": error,
    }
    if record.get("requestId"):
        detail["requestId"] = record["requestId"]
    return Notification(subject, "\n".join(lines) + "\n", detail)


def notify_step(
    state: dict[str, Any], records: FileRecords, mailer: Mailer | None, events: EventPublisher
) -> list[Delivery]:
    """The notify state sends what is owed; the state after its retries ran out reports what was missed."""
    ref = FileRef.from_state(state)
    if "missed" in state:
        return missed(records, mailer is not None, ref, state["missed"])
    return notify(records, mailer, events, ref)


def notify(
    records: FileRecords, mailer: Mailer | None, events: EventPublisher, ref: FileRef
) -> list[Delivery]:
    """Send each channel still owed for the record's final status.

    Raises ServiceThrottled when a channel was throttled (the workflow retries later; what was sent stays
    sent), else the first unexpected error, but only after every channel had its try.
    """
    record = records.get(ref.owner_id, ref.file_id)
    if record is None:
        return []  # deleted by its owner meanwhile: nobody to tell
    status = Status(record["status"])
    if not status.is_final:
        raise ValueError(f"file {ref.file_id} is {status.value}; only final outcomes are notified")
    message = compose(record)
    senders: list[Callable[[], Delivery]] = [
        lambda: _publish(records, events, ref, record, message),
        lambda: _email(records, mailer, ref, record, message),
    ]
    deliveries: list[Delivery] = []
    errors: list[Exception] = []
    for send in senders:
        try:
            deliveries.append(send())
        except Exception as error:
            errors.append(error)
    if errors:
        # Throttling first: the workflow retries it, and the retry also sends whatever else is still owed.
        raise next((error for error in errors if isinstance(error, ServiceThrottled)), errors[0])
    return deliveries


def _publish(
    records: FileRecords, events: EventPublisher, ref: FileRef, record: dict[str, Any], message: Notification
) -> Delivery:
    if records.was_notified(record, ref, Channel.EVENT):
        return Delivery(Channel.EVENT, Result.ALREADY_SENT)
    events.publish("FileProcessed", message.detail)
    records.mark_notified(ref, Status(record["status"]), Channel.EVENT)
    return Delivery(Channel.EVENT, Result.SENT)


def _email(
    records: FileRecords, mailer: Mailer | None, ref: FileRef, record: dict[str, Any], message: Notification
) -> Delivery:
    if mailer is None:
        return Delivery(Channel.EMAIL, Result.OFF, "no sender is configured")
    to = record.get("ownerEmail")
    if not to:
        return Delivery(Channel.EMAIL, Result.OFF, "the owner has no email address")
    status = Status(record["status"])
    if not records.claim_notification(ref, status, Channel.EMAIL):
        return Delivery(Channel.EMAIL, Result.ALREADY_SENT)
    try:
        mailer.send(to, message.subject, message.body)
    except EmailRefused as refusal:
        return Delivery(Channel.EMAIL, Result.REFUSED, str(refusal))  # the same answer on every retry
    except Exception:
        records.release_notification(ref, status, Channel.EMAIL)
        raise
    return Delivery(Channel.EMAIL, Result.SENT)


def missed(
    records: FileRecords, email_enabled: bool, ref: FileRef, failure: dict[str, Any]
) -> list[Delivery]:
    """The channels the record does not remember as sent, each with the error that ended the retries."""
    record = records.get(ref.owner_id, ref.file_id)
    if record is None or not Status(record["status"]).is_final:
        return []
    reason = failure_reason(failure)
    text = f"{reason['code']}: {reason['message']}"
    owed = [Channel.EVENT]
    if email_enabled and record.get("ownerEmail"):
        owed.append(Channel.EMAIL)
    return [
        Delivery(channel, Result.MISSED, text)
        for channel in owed
        if not records.was_notified(record, ref, channel)
    ]
