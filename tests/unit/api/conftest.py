"""Fixtures for the HTTP API tests: a stack provisioned from template.yaml and a client that sends events."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

import api.gateway
from filepipe.local import moto_patches
from filepipe.local.provision.provisioner import provision
from filepipe.local.services.s3 import patches as s3_patches
from filepipe.template import Template
from tests.stack import MOTO_CONFIG, REGION, StackFixture, reset_function_caches
from tests.unit.api.support import ApiClient, Seeder


@pytest.fixture(scope="module")
def api_stack(template: Template) -> Iterator[StackFixture]:
    """One stack per test module (provisioning is the slow part); tests stay apart by using fresh users."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            patch.delenv(name, raising=False)
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "POWERTOOLS_METRICS_DISABLED": "true",
        }.items():
            patch.setenv(name, value)
        reset_function_caches()
        with mock_aws(config=MOTO_CONFIG):
            stack = provision(
                lambda service: boto3.client(service, region_name=REGION),
                template,
                "filepipe-test",
                region=REGION,
            )
            fixture = StackFixture(stack, patch)
            fixture.use_functions("ApiFunction", "ShareApiFunction")
            yield fixture
    reset_function_caches()


@pytest.fixture
def settings_env(api_stack: StackFixture, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Change the functions' environment for one test; cached settings are dropped before and after."""
    reset_function_caches()
    yield monkeypatch
    monkeypatch.undo()
    reset_function_caches()


@pytest.fixture
def multipart_env(settings_env: pytest.MonkeyPatch) -> Iterator[None]:
    """Multipart above 5 MiB, and moto checking part checksums as S3 does (as `filepipe local` has it)."""
    settings_env.setenv("SINGLE_PART_LIMIT_BYTES", str(5 * 1024 * 1024))
    uninstall = moto_patches.install(s3_patches.verify_part_checksums)
    yield
    uninstall()


@pytest.fixture(autouse=True)
def internal_errors(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Exception]]:
    """Every error that reached the catch-all; a test fails if any did, unless it empties the list."""
    seen: list[Exception] = []
    answer = api.gateway._internal_error

    def spy(error: Exception) -> Any:
        seen.append(error)
        return answer(error)

    monkeypatch.setattr(api.gateway, "_internal_error", spy)
    yield seen
    assert not seen, f"the catch-all answered 500 for: {seen!r}"


@pytest.fixture
def client(api_stack: StackFixture) -> ApiClient:
    return ApiClient(api_stack)


@pytest.fixture
def seed(api_stack: StackFixture) -> Seeder:
    return Seeder(api_stack)
