"""Compose and send the owner's notification; the record's claim makes it happen once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from common.model import FileRef, Status
from common.records import FileRecords

_SUBJECTS = {
    Status.READY: "Your file {name} is ready",
    Status.REJECTED: "Your file {name} was rejected",
    Status.QUARANTINED: "Your file {name} was quarantined",
}


class Mailer(Protocol):
    def send(self, to: str, subject: str, body: str) -> None: ...


class EventPublisher(Protocol):
    def publish(self, detail_type: str, detail: dict[str, Any]) -> None: ...


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
    return Notification(subject, "\n".join(lines) + "\n", detail)


def notify(records: FileRecords, mailer: Mailer, events: EventPublisher, ref: FileRef) -> bool:
    """Send for the record's current final status; False when it was already sent."""
    record = records.get(ref.owner_id, ref.file_id)
    if record is None:
        return False  # deleted by its owner meanwhile: nobody to tell
    status = Status(record["status"])
    if not status.is_final:
        raise ValueError(f"file {ref.file_id} is {status.value}; only final outcomes are notified")
    if not records.claim_notification(ref, status):
        return False
    message = compose(record)
    try:
        if record.get("ownerEmail"):
            mailer.send(record["ownerEmail"], message.subject, message.body)
        events.publish("FileProcessed", message.detail)
    except Exception:
        records.release_notification(ref, status)
        raise
    return True
