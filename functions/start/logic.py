"""Decide which execution an upload event starts; duplicates map to the same execution name."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from common.model import FileRef


@dataclass(frozen=True)
class StartRequest:
    execution_name: str
    input: dict[str, Any]


def start_request(event: dict[str, Any]) -> StartRequest:
    """From an EventBridge "Object Created" event; raises ValueError for anything else."""
    if event.get("source") != "aws.s3" or event.get("detail-type") != "Object Created":
        raise ValueError(f"not an S3 Object Created event: {event.get('detail-type')!r}")
    detail = event["detail"]
    obj = detail["object"]
    # Unversioned buckets have no version-id; the ETag then pins the content instead.
    version = obj.get("version-id") or obj.get("etag") or "null"
    ref = FileRef.from_object(detail["bucket"]["name"], obj["key"], str(version))
    # The file id alone names the run, so a second delivery of the same event cannot start another.
    return StartRequest(execution_name=ref.file_id, input={"file": ref.to_state()})


def parse_message_body(body: str) -> dict[str, Any]:
    parsed = json.loads(body)
    if not isinstance(parsed, dict):
        raise ValueError("message body is not a JSON object")
    return parsed
