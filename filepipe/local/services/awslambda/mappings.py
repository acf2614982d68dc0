"""SQS event source mappings: poll the queue, invoke the function with an SQS batch, delete what succeeded."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from filepipe.local.services.awslambda.invoke import InvokeResult
from filepipe.local.services.awslambda.runner import MAX_SYNC_PAYLOAD
from filepipe.local.stack.model import EventSourceMappingSpec

log = logging.getLogger("filepipe.local.services.awslambda.mappings")

Invoke = Callable[[str, bytes], InvokeResult]
# Enters the identity the poller's SQS requests are made as: the function's execution role, as on AWS.
Acting = Callable[[], AbstractContextManager[None]]
POLL_WAIT_SECONDS = 1  # long-poll wait: short, so stopping never waits long


def _message_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """SQS's MessageAttributes as Lambda's SQS event spells them."""
    converted = {}
    for name, value in attributes.items():
        converted[name] = {
            "stringValue": value.get("StringValue"),
            "binaryValue": value.get("BinaryValue"),
            "stringListValues": value.get("StringListValues", []),
            "binaryListValues": value.get("BinaryListValues", []),
            "dataType": value.get("DataType"),
        }
    return converted


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's SQS poller sends for a batch of received messages."""
    records = []
    for message in messages:
        attributes = message.get("Attributes", {})
        record_attributes = {
            name: str(attributes[name])
            for name in (
                "ApproximateReceiveCount",
                "SentTimestamp",
                "SenderId",
                "ApproximateFirstReceiveTimestamp",
                "SequenceNumber",
                "MessageGroupId",
                "MessageDeduplicationId",
                "AWSTraceHeader",
            )
            if name in attributes
        }
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": record_attributes,
                "messageAttributes": _message_attributes(message.get("MessageAttributes", {})),
                "md5OfBody": message.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        )
    return {"Records": records}


def invocations(
    messages: list[dict[str, Any]], queue_arn: str, region: str, limit: int = MAX_SYNC_PAYLOAD
) -> list[tuple[list[dict[str, Any]], bytes]]:
    """The received messages as Lambda invokes them: batches whose event stays under Invoke's payload limit.

    Lambda's poller stops filling a batch at 6 MB, so ten 1 MiB messages make two invocations, not one
    that Invoke would refuse.
    """
    batches: list[tuple[list[dict[str, Any]], bytes]] = []
    pending = list(messages)
    while pending:
        count = len(pending)
        payload = json.dumps(sqs_event(pending, queue_arn, region)).encode()
        while count > 1 and len(payload) >= limit:
            count -= 1
            payload = json.dumps(sqs_event(pending[:count], queue_arn, region)).encode()
        batches.append((pending[:count], payload))
        pending = pending[count:]
    return batches


def succeeded_messages(
    messages: list[dict[str, Any]], result: InvokeResult, report_item_failures: bool
) -> list[dict[str, Any]]:
    """The messages of a batch that Lambda deletes after this result."""
    if result.function_error is not None:
        return []
    if not report_item_failures:
        return messages
    try:
        response = json.loads(result.payload or b"null")
    except ValueError:
        return []
    if response is None:
        return messages
    if not isinstance(response, dict):
        return []
    failures = response.get("batchItemFailures")
    if failures is None:
        return messages
    known = {message["MessageId"] for message in messages}
    failed = set()
    for failure in failures if isinstance(failures, list) else [None]:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in known:
            return []  # an unusable failure report fails the whole batch, as on AWS
        failed.add(identifier)
    return [message for message in messages if message["MessageId"] not in failed]


class QueuePoller:
    """Pollers for one mapping; each receives a batch, invokes the function and deletes what succeeded."""

    def __init__(
        self,
        spec: EventSourceMappingSpec,
        sqs: Any,
        invoke: Invoke,
        region: str,
        pollers: int = 2,
        acting: Acting = contextlib.nullcontext,
    ) -> None:
        self.spec = spec
        self._sqs = sqs
        self._invoke = invoke
        self._region = region
        self._acting = acting
        self._stopped = threading.Event()
        # Lambda knows the queue by its ARN: finding its URL is the runtime's own step, not the role's.
        self._url = sqs.get_queue_url(QueueName=spec.queue_arn.rsplit(":", 1)[-1])["QueueUrl"]
        count = min(pollers, spec.maximum_concurrency or pollers)
        self._threads = [
            threading.Thread(target=self._run, name=f"poll-{spec.logical_id}-{i}", daemon=True)
            for i in range(count)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def _receive(self) -> list[dict[str, Any]]:
        wanted = self.spec.batch_size
        deadline = time.monotonic() + self.spec.batching_window_seconds
        messages: list[dict[str, Any]] = []
        while not self._stopped.is_set() and len(messages) < wanted:
            response = self._sqs.receive_message(
                QueueUrl=self._url,
                MaxNumberOfMessages=min(10, wanted - len(messages)),
                WaitTimeSeconds=POLL_WAIT_SECONDS if not messages else 0,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            batch = response.get("Messages", [])
            messages.extend(batch)
            if not batch and (messages or time.monotonic() >= deadline):
                break
            if messages and time.monotonic() >= deadline:
                break
        return messages

    def _delete(self, done: list[dict[str, Any]]) -> None:
        for start in range(0, len(done), 10):
            entries = [
                {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                for index, message in enumerate(done[start : start + 10])
            ]
            with self._acting():
                self._sqs.delete_message_batch(QueueUrl=self._url, Entries=entries)

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                with self._acting():
                    messages = self._receive()
                if not messages or self._stopped.is_set():
                    continue
                for batch, payload in invocations(messages, self.spec.queue_arn, self._region):
                    result = self._invoke(self.spec.function_name, payload)
                    self._delete(succeeded_messages(batch, result, self.spec.report_batch_item_failures))
            except Exception:
                if self._stopped.is_set():
                    return
                log.exception("%s: polling %s failed; retrying", self.spec.logical_id, self.spec.queue_arn)
                self._stopped.wait(1.0)
