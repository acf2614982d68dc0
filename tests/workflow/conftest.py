"""Workflow fixtures: a real clamd, the stack from template.yaml, and the in-process Lambda router."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from filepipe.clamd import LocalClamd
from tests.stack import StackFactory
from tests.workflow.harness import Pipeline, install_router

PipelineFactory = Callable[..., Pipeline]


@pytest.fixture(scope="session")
def clamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalClamd]:
    if not LocalClamd.is_available():
        pytest.fail("clamd is not installed: run `make install` (Debian package clamav-daemon)")
    with LocalClamd(tmp_path_factory.mktemp("clamd")) as running:
        yield running


@pytest.fixture
def make_pipeline(make_stack: StackFactory, clamd: LocalClamd) -> Iterator[PipelineFactory]:
    """A pipeline over a fresh stack; keyword arguments override template parameters."""
    uninstallers: list[Callable[[], None]] = []

    def factory(**parameters: str) -> Pipeline:
        parameters.setdefault("ClamdAddress", clamd.address)
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
