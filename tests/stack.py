"""The stack a test runs against: moto resources provisioned from template.yaml."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

import common.aws
import common.settings
from common.model import FileRef, ingest_key, new_file_id
from filepipe.local import moto_core_patches, moto_patches
from filepipe.local.provision.provisioner import provision
from filepipe.local.services.stepfunctions import patches as stepfunctions_patches
from filepipe.local.stack.model import FunctionSpec, Stack
from filepipe.template import Template

REGION = "us-east-1"
MOTO_CONFIG: Any = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}


def share_sdk_data() -> Callable[[], None]:
    """Every botocore session reads the SDK's models through one loader, as in `filepipe local`; returns
    what puts botocore back.

    A session parses each service's model (and the endpoint rules) again through a loader of its own, a
    tenth of a second or more per service. Tests make sessions all the time: mock_aws gives boto3 a new
    default session, and the functions make one per client (common.aws), again after each test resets
    them. The models are only read.
    """
    import botocore.session

    shared = moto_core_patches.sdk_data_loader()
    create_loader = botocore.session.create_loader

    def loader(search_path_string: str | None = None) -> Any:
        return shared if search_path_string is None else create_loader(search_path_string)

    return moto_patches.replace(botocore.session, create_loader=loader)


@contextmanager
def spared_moto_work(definitions: Path) -> Iterator[None]:
    """moto, inside a ``mock_aws`` already started, without the work `filepipe local` spares it.

    Each of these patches changes what moto costs, never what it answers, and the runtime installs them
    too. Without them a stack's provisioning goes mostly on moto loading SDK models and on parsing both
    state machines' ASL, which moto also does again for every execution; ``definitions`` keeps the parsed
    programs for the whole run, and every execution still gets a private copy.
    """
    with ExitStack() as installed:
        for patch in (
            moto_core_patches.share_sdk_data_loader,
            moto_core_patches.remember_response_methods,
            moto_core_patches.cache_serializer_aliases,
            stepfunctions_patches.cache_json_paths,
        ):
            installed.callback(moto_patches.install(patch))
        installed.callback(moto_patches.install(stepfunctions_patches.cache_definitions, definitions))
        yield


@contextmanager
def stack_moto(definitions: Path) -> Iterator[None]:
    """The moto a test's stack lives in: started anew, so nothing another test created is there."""
    with mock_aws(config=MOTO_CONFIG), spared_moto_work(definitions):
        yield


def provision_stack(template: Template, **parameters: str) -> Stack:
    """The template provisioned into the moto started (``stack_moto``), as the ``make_stack`` fixture does."""
    return provision(
        lambda service: boto3.client(service, region_name=REGION),
        template,
        "filepipe-test",
        region=REGION,
        parameters=parameters,
    )


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
