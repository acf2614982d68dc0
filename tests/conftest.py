"""Fixtures shared by every test tier: fake credentials and a stack provisioned from template.yaml."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from filepipe.local.provision.provisioner import provision
from filepipe.template import Template, load_template
from tests.stack import MOTO_CONFIG, REGION, StackFactory, StackFixture, reset_function_caches


@pytest.fixture(scope="session")
def template() -> Template:
    return load_template(region=REGION)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and no endpoint or profile, so nothing can reach a real account."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    reset_function_caches()


@pytest.fixture
def make_stack(template: Template, aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[StackFactory]:
    """Provision the template into moto with the given parameter overrides (one stack per test)."""
    with mock_aws(config=MOTO_CONFIG):

        def factory(**parameters: str) -> StackFixture:
            stack = provision(
                lambda service: boto3.client(service, region_name=REGION),
                template,
                "filepipe-test",
                region=REGION,
                parameters=parameters,
            )
            return StackFixture(stack, monkeypatch)

        yield factory
    reset_function_caches()


@pytest.fixture
def stack(make_stack: StackFactory) -> StackFixture:
    return make_stack()
