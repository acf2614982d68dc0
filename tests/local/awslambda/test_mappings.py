"""Lambda's SQS poller: batches stay under Invoke's payload limit, as Lambda stops filling one at 6 MB."""

from __future__ import annotations

import json
from typing import Any

from filepipe.local.services.awslambda.mappings import invocations
from filepipe.local.services.awslambda.runner import MAX_SYNC_PAYLOAD

QUEUE = "arn:aws:sqs:us-east-1:123456789012:start"
MESSAGE_LIMIT = 1024 * 1024  # SQS's largest message body


def _messages(count: int, size: int) -> list[dict[str, Any]]:
    return [
        {"MessageId": f"m{index}", "ReceiptHandle": f"r{index}", "Body": "x" * size, "Attributes": {}}
        for index in range(count)
    ]


def test_ten_of_the_largest_messages_make_several_invocations_each_under_the_limit() -> None:
    messages = _messages(10, MESSAGE_LIMIT)
    batches = invocations(messages, QUEUE, "us-east-1")
    assert len(batches) == 2
    assert [m for batch, _ in batches for m in batch] == messages  # every message once, in order
    for batch, payload in batches:
        assert len(payload) < MAX_SYNC_PAYLOAD
        assert [record["messageId"] for record in json.loads(payload)["Records"]] == [
            m["MessageId"] for m in batch
        ]


def test_small_messages_make_one_invocation() -> None:
    messages = _messages(10, 1000)
    [(batch, payload)] = invocations(messages, QUEUE, "us-east-1")
    assert batch == messages
    assert len(json.loads(payload)["Records"]) == 10
