"""HTTP API test helpers: send the sample events to the handlers; seed files as the workflow leaves them."""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import api.handler
import api.public_handler
from common.model import Status, clean_key, new_file_id, thumbnail_key
from common.records import FileRecords
from filepipe.local.services.awslambda.invoke import context_for
from tests.stack import StackFixture

EVENTS_DIR = Path(__file__).resolve().parents[3] / "events" / "api"
PUBLIC_EVENTS = frozenset(
    {
        "get_share",
        "unlock_share",
        "download_share",
        "get_request_link",
        "unlock_request_link",
        "create_guest_upload",
        "get_guest_upload_progress",
        "sign_guest_upload_parts",
        "complete_guest_upload",
        "get_guest_uploads",
    }
)
_UNSET: Any = object()


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS_DIR / f"{name}.json").read_text())
    return event


@dataclass
class ApiResponse:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def error_code(self) -> str:
        return str(self.body["error"]["code"])


class ApiClient:
    """Sends the sample events of events/api, adjusted, to the handlers as API Gateway would."""

    def __init__(self, stack: StackFixture) -> None:
        self.stack = stack

    def event(
        self,
        name: str,
        *,
        sub: str | None = None,
        path: dict[str, str] | None = None,
        body: Any = _UNSET,
        raw_body: str | None = None,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        event = copy.deepcopy(load_event(name))
        route = event["routeKey"].split(" ", 1)[1]
        if path is not None:
            raw_path = route
            for param, value in path.items():
                raw_path = raw_path.replace("{" + param + "}", value)
            event["rawPath"] = raw_path
            event["requestContext"]["http"]["path"] = raw_path
            event["pathParameters"] = path
        if body is not _UNSET:
            raw_body = json.dumps(body)
        if raw_body is not None:
            event["body"] = raw_body
            event["headers"]["content-length"] = str(len(raw_body.encode()))
        if query is not None:
            event["rawQueryString"] = urlencode(query)
            event["queryStringParameters"] = dict(query)
        if headers is not None:
            event["headers"].update(headers)
        if sub is not None:
            event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = sub
        return event

    def send(self, name: str, event: dict[str, Any]) -> ApiResponse:
        public = name in PUBLIC_EVENTS
        handler = api.public_handler.lambda_handler if public else api.handler.lambda_handler
        spec = self.stack.function("ShareApiFunction" if public else "ApiFunction")
        response = handler(event, context_for(spec))
        body = response.get("body")
        return ApiResponse(
            status=int(response["statusCode"]),
            headers=dict(response.get("headers") or {}),
            body=json.loads(body) if body else None,
        )

    def call(self, name: str, **kwargs: Any) -> ApiResponse:
        response = self.send(name, self.event(name, **kwargs))
        assert response.status < 500, f"{name} answered {response.status}: {response.body}"
        if response.status >= 400:
            assert set(response.body) == {"error"}, response.body
            assert set(response.body["error"]) == {"code", "message"}, response.body
        return response


def new_user() -> str:
    return str(uuid.uuid4())


class Seeder:
    """Puts files into the states the workflow leaves them in, without running the workflow."""

    def __init__(self, stack: StackFixture) -> None:
        self.stack = stack
        self.s3 = stack.client("s3")
        self.records = FileRecords(stack.client("dynamodb"), stack.physical("FilesTable"))
        self.clean_bucket = stack.physical("FilesBucket")
        self.ingest_bucket = stack.physical("IngestBucket")
        self.quarantine_bucket = stack.physical("QuarantineBucket")

    def file(
        self,
        owner_id: str,
        status: Status = Status.READY,
        *,
        name: str = "holiday.jpg",
        content_type: str = "image/jpeg",
        data: bytes = b"\xff\xd8\xff\xe0 not really a jpeg",
        thumbnails: bool = True,
        created_at: str = "2024-11-22T11:30:00.000Z",
    ) -> str:
        file_id = new_file_id()
        record: dict[str, Any] = {
            "fileId": file_id,
            "ownerId": owner_id,
            "name": name,
            "size": len(data),
            "contentType": content_type,
            "status": status.value,
            "createdAt": created_at,
            "updatedAt": created_at,
        }
        if status is not Status.UPLOADING:
            record["executionName"] = f"{file_id}-1"
            self.s3.put_object(Bucket=self.ingest_bucket, Key=f"uploads/{owner_id}/{file_id}", Body=data)
        if status is Status.READY:
            record.update(sha256="ab" * 32, cleanKey=clean_key(owner_id, file_id))
            self.s3.put_object(
                Bucket=self.clean_bucket,
                Key=clean_key(owner_id, file_id),
                Body=data,
                ContentType=content_type,
            )
            if thumbnails:
                record.update(width=4000, height=3000)
                record["thumbnails"] = []
                for size, height in ((256, 192), (1024, 768)):
                    key = thumbnail_key(owner_id, file_id, size)
                    self.s3.put_object(
                        Bucket=self.clean_bucket, Key=key, Body=b"RIFF....WEBP", ContentType="image/webp"
                    )
                    record["thumbnails"].append({"size": size, "key": key, "width": size, "height": height})
        if status is Status.QUARANTINED:
            record["error"] = {"code": "MALWARE_FOUND", "message": "Malware detected: Eicar-Test-Signature"}
            self.s3.put_object(
                Bucket=self.quarantine_bucket, Key=f"quarantine/{owner_id}/{file_id}", Body=data
            )
        self.records.create(record)
        return file_id

    def record(self, owner_id: str, file_id: str) -> dict[str, Any] | None:
        return self.records.get(owner_id, file_id)

    def keys(self, bucket: str, prefix: str) -> list[str]:
        response = self.s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
        return [item["Key"] for item in response.get("Contents", [])]

    def table_items(self) -> list[dict[str, Any]]:
        dynamodb = self.stack.client("dynamodb")
        items: list[dict[str, Any]] = []
        for page in dynamodb.get_paginator("scan").paginate(TableName=self.stack.physical("FilesTable")):
            items.extend(page["Items"])
        return items
