"""Workflow fixtures: a real clamd, the stack from template.yaml, and the in-process Lambda router."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import SimpleNamespace

import pytest

from filepipe.clamd import LocalClamd
from filepipe.local import moto_patches
from filepipe.local.services.stepfunctions.patches import redrive_executions
from tests.stack import StackFactory
from tests.workflow.harness import SENDER, Pipeline, install_router

PipelineFactory = Callable[..., Pipeline]


@pytest.fixture(scope="session")
def clamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalClamd]:
    if not LocalClamd.is_available():
        pytest.fail("clamd is not installed: run `make install` (Debian package clamav-daemon)")
    with LocalClamd(tmp_path_factory.mktemp("clamd")) as running:
        yield running


@pytest.fixture
def make_pipeline(make_stack: StackFactory, clamd: LocalClamd) -> Iterator[PipelineFactory]:
    """A pipeline over a fresh stack; keyword arguments override template parameters.

    moto gains Step Functions' RedriveExecution for the test, as the local runtime has it.
    """
    uninstallers: list[Callable[[], None]] = [moto_patches.install(redrive_executions)]

    def factory(**parameters: str) -> Pipeline:
        parameters.setdefault("ClamdAddress", clamd.address)
        parameters.setdefault("SenderEmail", SENDER)
        stack = make_stack(**parameters)
        router, uninstall = install_router(stack)
        uninstallers.append(uninstall)
        stack.use_functions(*Pipeline.WORKFLOW_FUNCTIONS)
        return Pipeline(stack, router)

    yield factory
    for uninstall in uninstallers:
        uninstall()


@pytest.fixture
def pipeline(make_pipeline: PipelineFactory) -> Pipeline:
    return make_pipeline()


@pytest.fixture
def retry_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits moto's interpreter takes between a state's retries, recorded instead of slept."""
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    waits: list[float] = []
    monkeypatch.setattr(retrier_decl, "time", SimpleNamespace(sleep=waits.append))
    return waits
