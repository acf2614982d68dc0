"""The stack a test runs against: moto resources provisioned from template.yaml."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest

import common.aws
import common.settings
from common.model import FileRef, ingest_key, new_file_id
from filepipe.local.stack.model import FunctionSpec, Stack

REGION = "us-east-1"
MOTO_CONFIG: Any = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}


def ingest_bucket(name: str) -> Any:
    """An S3 client (of the moto already started) with a versioned bucket ``name``, as ingest is."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return s3


def put_upload(
    s3: Any, bucket: str, owner_id: str, data: bytes, content_type: str = "application/octet-stream"
) -> FileRef:
    """``data`` stored under a new upload key of ``owner_id``, as a browser's POST leaves it."""
    file_id = new_file_id()
    key = ingest_key(owner_id, file_id)
    version = s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)["VersionId"]
    return FileRef(bucket, key, version, owner_id, file_id)


def step_event(ref: FileRef, **state: Any) -> dict[str, Any]:
    """The state a workflow step receives for ``ref`` (plus what earlier steps added)."""
    return {"file": ref.to_state(), "executionName": ref.file_id, **state}


def record_s3_requests(s3: Any) -> list[str]:
    """The S3 operations ``s3`` makes from now on, ranged reads marked "(range)"."""
    calls: list[str] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        calls.append(model.name + (" (range)" if "Range" in params else ""))

    s3.meta.events.register("before-parameter-build.s3", record)
    return calls


def reset_function_caches() -> None:
    """Handlers cache clients and settings per process; tests change both between cases."""
    common.aws.reset_clients()
    common.settings.load_settings.cache_clear()


class StackFixture:
    """A stack in moto plus helpers to run its functions with the environment the template gives."""

    def __init__(self, stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
        self.stack = stack
        self._monkeypatch = monkeypatch

    def physical(self, logical_id: str) -> str:
        return self.stack.physical[logical_id]

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)

    def function(self, logical_id: str) -> FunctionSpec:
        return self.stack.functions[logical_id]

    def use_functions(self, *logical_ids: str, **overrides: str) -> None:
        """Put these functions' template environment in os.environ (they must agree on shared names)."""
        merged: dict[str, str] = {}
        for logical_id in logical_ids:
            for name, value in self.function(logical_id).environment.items():
                if merged.get(name, value) != value:
                    raise ValueError(f"{logical_id} sets {name} differently from another function")
                merged[name] = value
        merged.update(overrides)
        for name, value in merged.items():
            self._monkeypatch.setenv(name, value)
        reset_function_caches()


StackFactory = Callable[..., StackFixture]
