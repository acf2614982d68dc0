"""Lambda handler for the notify step: SES email and a FileProcessed event."""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field

from common.aws import client
from common.model import FileRef
from common.observability import bind_file, instrumented, logger
from common.records import FileRecords
from common.settings import EnvSettings, load_settings
from notify.logic import notify


class NotifySettings(EnvSettings):
    files_table: str = Field(alias="FILES_TABLE", min_length=1)
    sender_email: str = Field(alias="SENDER_EMAIL", min_length=3)
    event_bus_name: str = Field(alias="EVENT_BUS_NAME", min_length=1)


class SesMailer:
    def __init__(self, ses: Any, sender: str) -> None:
        self._ses = ses
        self._sender = sender

    def send(self, to: str, subject: str, body: str) -> None:
        self._ses.send_email(
            Source=self._sender,
            Destination={"ToAddresses": [to]},
            Message={"Subject": {"Data": subject}, "Body": {"Text": {"Data": body}}},
        )


class BusPublisher:
    def __init__(self, events: Any, bus: str) -> None:
        self._events = events
        self._bus = bus

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        response = self._events.put_events(
            Entries=[
                {
                    "Source": "filepipe",
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail),
                    "EventBusName": self._bus,
                }
            ]
        )
        if response.get("FailedEntryCount"):
            raise RuntimeError(f"EventBridge refused {detail_type}: {response['Entries']}")


@instrumented("notify")
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    bind_file(event)
    settings = load_settings(NotifySettings)
    sent = notify(
        FileRecords(client("dynamodb"), settings.files_table),
        SesMailer(client("ses"), settings.sender_email),
        BusPublisher(client("events"), settings.event_bus_name),
        FileRef.from_state(event),
    )
    logger.info("owner notified" if sent else "notification already sent")
    return {"sent": sent}
