"""Each test's stack starts empty: what the tests keep between stacks (parsed definitions, SDK models) is
never anything a stack holds."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import pytest

from filepipe.clamd import LocalClamd
from filepipe.local import moto_patches
from filepipe.local.services.stepfunctions.patches import (
    callbacks_as_on_aws,
    keep_states_error_names,
    redrive_executions,
)
from filepipe.template import Template
from tests import images
from tests.stack import StackFixture, provision_stack, stack_moto
from tests.workflow.harness import SENDER, Pipeline, install_router


def _pipeline(
    template: Template, monkeypatch: pytest.MonkeyPatch, clamd: LocalClamd
) -> tuple[Pipeline, Callable[[], None]]:
    stack = provision_stack(template, Scanner="ClamAV", ClamdAddress=clamd.address, SenderEmail=SENDER)
    fixture = StackFixture(stack, monkeypatch)
    router, uninstall = install_router(fixture)
    pipeline = Pipeline(fixture, router, clamd.address)
    fixture.use_functions(*pipeline.functions)
    return pipeline, uninstall


def _created(stack: StackFixture, resource_type: str) -> list[str]:
    """The physical ids of the stack's resources of a type (those its conditions created)."""
    declared = stack.stack.template.of_type(resource_type)
    return [stack.physical(logical_id) for logical_id in declared if logical_id in stack.stack.physical]


def _held(pipeline: Pipeline) -> dict[str, int]:
    """How much of each kind of state the stack holds: object versions and delete markers, items,
    executions, messages (visible, in flight or delayed) and emails sent."""
    stack = pipeline.stack
    s3, dynamodb, sqs = stack.client("s3"), stack.client("dynamodb"), stack.client("sqs")
    held = {"objects": 0, "items": 0, "executions": 0, "messages": 0, "emails": len(pipeline.sent_emails())}
    for bucket in _created(stack, "AWS::S3::Bucket"):
        listed = s3.list_object_versions(Bucket=bucket)
        held["objects"] += len(listed.get("Versions", [])) + len(listed.get("DeleteMarkers", []))
    for table in _created(stack, "AWS::DynamoDB::Table"):
        held["items"] += dynamodb.scan(TableName=table, Select="COUNT")["Count"]
    for machine in _created(stack, "AWS::StepFunctions::StateMachine"):
        held["executions"] += len(pipeline.sfn.list_executions(stateMachineArn=machine)["executions"])
    for queue in _created(stack, "AWS::SQS::Queue"):
        attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
        held["messages"] += sum(
            int(attributes[name])
            for name in (
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            )
        )
    return held


def test_a_stack_starts_empty_whatever_the_one_before_it_left(
    template: Template,
    aws_env: None,
    monkeypatch: pytest.MonkeyPatch,
    parsed_definitions: Path,
    clamd: LocalClamd,
) -> None:
    """Two stacks one after the other, as two tests get them from ``make_stack``."""
    with ExitStack() as patches:
        for patch in (redrive_executions, callbacks_as_on_aws, keep_states_error_names):
            patches.callback(moto_patches.install(patch))
        stacks: list[tuple[dict[str, int], dict[str, int], str]] = []
        for _ in range(2):
            with stack_moto(parsed_definitions):
                pipeline, uninstall = _pipeline(template, monkeypatch, clamd)
                try:
                    before = _held(pipeline)
                    _, execution = pipeline.process(images.jpeg())
                    failed_executions = pipeline.stack.physical("FailedExecutionsQueue")
                    pipeline.sqs.send_message(QueueUrl=failed_executions, MessageBody="{}")
                    stacks.append((before, _held(pipeline), execution["status"]))
                finally:
                    uninstall()

    # Provisioning leaves something of its own (moto writes S3 access log records for its requests).
    [(new, left, first_status), (found, _, second_status)] = stacks
    assert all(left[kind] > new[kind] for kind in new), f"a run leaves every kind: {new} -> {left}"
    assert found == new, "the stack before left state in the next one"
    assert (first_status, second_status) == ("SUCCEEDED", "SUCCEEDED")
