"""Decide which execution an upload event starts; duplicates map to the same execution name."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from pydantic import Field, ValidationError

from common.model import FileRef


class UploadCreated(S3EventNotificationEventBridgeModel):
    """EventBridge's S3 "Object Created" event, the only kind the upload rule puts on the start queue."""

    source: Literal["aws.s3"]
    detail_type: Literal["Object Created"] = Field(alias="detail-type")


_JSON_KINDS: dict[type, str] = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}


@dataclass(frozen=True)
class StartRequest:
    execution_name: str
    input: dict[str, Any]


def _reasons(error: ValidationError) -> str:
    """Where and why the event is malformed, without echoing its content into the logs."""
    return "; ".join(
        f"{'.'.join(str(part) for part in problem['loc']) or 'event'}: {problem['msg']}"
        for problem in error.errors(include_url=False, include_input=False)[:3]
    )


def start_request(event: dict[str, Any]) -> StartRequest:
    """From an EventBridge "Object Created" event of an upload; raises ValueError for anything else."""
    try:
        created = UploadCreated.model_validate(event)
    except ValidationError as error:
        raise ValueError(f"not an S3 Object Created event of an upload: {_reasons(error)}") from None
    obj = created.detail.object
    # Unversioned buckets have no version-id; the ETag then pins the content instead.
    version = obj.version_id or obj.etag or "null"
    ref = FileRef.from_object(created.detail.bucket.name, obj.key, version)
    # The file id alone names the run, so a second delivery of the same event cannot start another.
    return StartRequest(execution_name=ref.file_id, input={"file": ref.to_state()})


def parse_message_body(body: str) -> dict[str, Any]:
    """The queued event; raises ValueError unless the body is a JSON object."""
    try:
        parsed = json.loads(body)
    except (TypeError, ValueError) as error:
        raise ValueError(f"message body is not JSON: {error}") from None
    if not isinstance(parsed, dict):
        kind = _JSON_KINDS.get(type(parsed), "a number")
        raise ValueError(f"message body is {kind}, not a JSON object")
    return parsed
