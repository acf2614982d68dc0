"""Workflow fixtures: a real clamd, the stack from template.yaml per Scanner, the in-process router."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import SimpleNamespace

import pytest

from filepipe.clamd import LocalClamd
from filepipe.local import moto_patches
from filepipe.local.services.stepfunctions.patches import (
    callbacks_as_on_aws,
    keep_states_error_names,
    redrive_executions,
)
from tests.stack import StackFactory
from tests.workflow.harness import SENDER, Pipeline, install_router

PipelineFactory = Callable[..., Pipeline]


@pytest.fixture(scope="session")
def clamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalClamd]:
    if not LocalClamd.is_available():
        pytest.fail("clamd is not installed: run `make install` (Debian package clamav-daemon)")
    with LocalClamd(tmp_path_factory.mktemp("clamd")) as running:
        yield running


SCANNERS = ("ClamAV", "GuardDuty")


@pytest.fixture(params=SCANNERS)
def scanner(request: pytest.FixtureRequest) -> str:
    """The template's Scanner: every workflow test runs with each, unless it names one
    (``@pytest.mark.parametrize("scanner", ["ClamAV"], indirect=True)``)."""
    return str(request.param)


@pytest.fixture
def make_pipeline(make_stack: StackFactory, clamd: LocalClamd, scanner: str) -> Iterator[PipelineFactory]:
    """A pipeline over a fresh stack; keyword arguments override template parameters.

    moto gains, for the test, what the local runtime adds to it: Step Functions' RedriveExecution (and the
    context object's RedriveCount), callback tasks that take one outcome, with its cause, and States. errors
    a Fail state raises again (a verdict's States.Timeout) under their own names. GuardDuty's
    stand-in must have delivered everything it was asked to by the end of the test.
    """
    uninstallers: list[Callable[[], None]] = [
        moto_patches.install(redrive_executions),
        moto_patches.install(callbacks_as_on_aws),
        moto_patches.install(keep_states_error_names),
    ]
    pipelines: list[Pipeline] = []

    def factory(**parameters: str) -> Pipeline:
        parameters.setdefault("Scanner", scanner)
        parameters.setdefault("ClamdAddress", clamd.address)
        parameters.setdefault("SenderEmail", SENDER)
        stack = make_stack(**parameters)
        router, uninstall = install_router(stack)
        uninstallers.append(uninstall)
        pipeline = Pipeline(stack, router, clamd.address)
        stack.use_functions(*pipeline.functions)
        pipelines.append(pipeline)
        return pipeline

    yield factory
    for pipeline in pipelines:
        if pipeline.guardduty is not None:
            pipeline.guardduty.join()
    for uninstall in uninstallers:
        uninstall()
    for pipeline in pipelines:
        if pipeline.guardduty is not None:
            assert pipeline.guardduty.errors == [], "the verdict function failed on a scan result"


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
