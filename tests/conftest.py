"""Fixtures shared by every test tier: fake credentials and a stack provisioned from template.yaml."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from filepipe.template import Template, load_template
from tests.stack import (
    REGION,
    StackFactory,
    StackFixture,
    provision_stack,
    reset_function_caches,
    share_sdk_data,
    stack_moto,
)


def pytest_configure(config: pytest.Config) -> None:
    # Each test leaves a moto's worth of objects old enough to reach the oldest generation, so with the
    # default thresholds the collector walks the whole heap (~400,000 objects, ~0.4 s) about once a test:
    # an eighth of the workflow tests' time. Cyclic garbage now waits longer, in a heap a little larger.
    gc.set_threshold(10_000, 50, 50)


@pytest.fixture(scope="session", autouse=True)
def sdk_data() -> Iterator[None]:
    """One SDK data loader for every botocore session of the run (``share_sdk_data``)."""
    restore = share_sdk_data()
    yield
    restore()


@pytest.fixture(scope="session")
def template() -> Template:
    return load_template(region=REGION)


@pytest.fixture(scope="session")
def parsed_definitions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the state machines' parsed ASL is kept between tests."""
    return tmp_path_factory.mktemp("parsed-definitions")


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
def make_stack(
    template: Template, aws_env: None, monkeypatch: pytest.MonkeyPatch, parsed_definitions: Path
) -> Iterator[StackFactory]:
    """Provision the template into moto with the given parameter overrides (one stack per test)."""
    with stack_moto(parsed_definitions):

        def factory(**parameters: str) -> StackFixture:
            return StackFixture(provision_stack(template, **parameters), monkeypatch)

        yield factory
    reset_function_caches()


@pytest.fixture
def stack(make_stack: StackFactory) -> StackFixture:
    return make_stack()
