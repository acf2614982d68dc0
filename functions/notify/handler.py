"""Lambda handler for the notify step: a FileProcessed event and, with a sender configured, an SES email."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from pydantic import Field

from common.aws import THROTTLING_CODES, client, error_code
from common.errors import ServiceThrottled
from common.observability import NAMESPACE, bind_file, instrumented, logger
from common.records import FileRecords
from common.settings import EnvSettings, load_settings
from common.shares import ShareRecords
from notify.downloads import notify_download
from notify.logic import Delivery, EmailRefused, notify_step

# The share function's event for a download its owner asked to hear of; a rule brings it here.
SHARE_DOWNLOADED = "ShareDownloaded"


class NotifySettings(EnvSettings):
    files_table: str = Field(alias="FILES_TABLE", min_length=1)
    # Empty: email is off; the FileProcessed event and the web UI still tell the owner.
    sender_email: str = Field(alias="SENDER_EMAIL", default="", pattern=r"^$|^[^@\s]+@[^@\s]+$")
    event_bus_name: str = Field(alias="EVENT_BUS_NAME", min_length=1)


class SesMailer:
    def __init__(self, ses: Any, sender: str) -> None:
        self._ses = ses
        self._sender = sender

    def send(self, to: str, subject: str, body: str) -> None:
        try:
            self._ses.send_email(
                Source=self._sender,
                Destination={"ToAddresses": [to]},
                Message={"Subject": {"Data": subject}, "Body": {"Text": {"Data": body}}},
            )
        except Exception as error:
            code = error_code(error)
            if code in THROTTLING_CODES:  # the sending rate or the daily quota: SES asks to retry later
                raise ServiceThrottled(f"SES throttled sending from {self._sender}") from error
            response = getattr(error, "response", None) or {}
            if 400 <= int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)) < 500:
                # The request itself is refused (MessageRejected: an unverified sender, or recipient in
                # the sandbox; paused sending; AccessDenied): the same request gets the same answer.
                raise EmailRefused(code, str(response.get("Error", {}).get("Message", ""))) from error
            raise


class BusPublisher:
    def __init__(self, events: Any, bus: str) -> None:
        self._events = events
        self._bus = bus

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        entry = {"Source": "filepipe", "DetailType": detail_type, "Detail": json.dumps(detail)}
        try:
            response = self._events.put_events(Entries=[{**entry, "EventBusName": self._bus}])
        except Exception as error:
            if error_code(error) in THROTTLING_CODES:
                raise ServiceThrottled(f"EventBridge throttled {detail_type}") from error
            raise
        if response.get("FailedEntryCount"):
            [failed] = response["Entries"]
            if failed.get("ErrorCode") in THROTTLING_CODES:
                raise ServiceThrottled(f"EventBridge throttled {detail_type}")
            raise RuntimeError(f"EventBridge refused {detail_type}: {failed}")


def count_failure(delivery: Delivery) -> None:
    """One NotificationsFailed per channel that did not reach the owner (its own metric set: a channel
    dimension must not split the step's other metrics)."""
    logger.warning("owner not notified", extra={"channel": delivery.channel.value, "reason": delivery.reason})
    with single_metric(
        name="NotificationsFailed",
        unit=MetricUnit.Count,
        value=1,
        namespace=NAMESPACE,
        default_dimensions={"step": "notify", "channel": delivery.channel.value},
    ):
        pass


def report(deliveries: list[Delivery]) -> dict[str, str]:
    for delivery in deliveries:
        if delivery.failed:
            count_failure(delivery)
        else:
            logger.info("notification", extra={"channel": delivery.channel.value, "result": delivery.result})
    return {delivery.channel.value: delivery.result.value for delivery in deliveries}


def share_downloaded(detail: dict[str, Any], settings: NotifySettings) -> dict[str, str]:
    logger.append_keys(shareId=detail.get("shareId"), fileId=detail.get("fileId"))
    delivery = notify_download(
        detail,
        ShareRecords(client("dynamodb"), settings.files_table),
        SesMailer(client("ses"), settings.sender_email) if settings.sender_email else None,
    )
    return report([delivery])


@instrumented("notify")
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = load_settings(NotifySettings)
    if event.get("detail-type") == SHARE_DOWNLOADED:
        return share_downloaded(event["detail"], settings)
    bind_file(event)
    deliveries = notify_step(
        event,
        FileRecords(client("dynamodb"), settings.files_table),
        SesMailer(client("ses"), settings.sender_email) if settings.sender_email else None,
        BusPublisher(client("events"), settings.event_bus_name),
    )
    return report(deliveries)
