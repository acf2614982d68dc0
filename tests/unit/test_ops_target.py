"""What the operator commands talk to: a deployed stack, the running local runtime, or explicit names."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from filepipe.ops.target import (
    STATE_MACHINE_ARN,
    Target,
    TargetError,
    add_target_arguments,
    resolve_target,
)

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:filepipe-ProcessUpload"


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_target_arguments(parser)
    return parser.parse_args(list(argv))


class CloudFormation:
    def __init__(self, outputs: dict[str, str]) -> None:
        self.outputs = outputs
        self.asked: list[str] = []

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        self.asked.append(StackName)
        return {
            "Stacks": [{"Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in self.outputs.items()]}]
        }


class Refusing:
    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        raise RuntimeError(f"Stack with id {StackName} does not exist")


def _write_state(state_dir: Path, endpoint: str = "http://127.0.0.1:8002") -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    state = {
        "awsEndpoint": endpoint,
        "region": "eu-west-1",
        "credentials": {"accessKeyId": "AKIALOCAL", "secretAccessKey": "local-secret"},
        "outputs": {STATE_MACHINE_ARN: MACHINE, "FilesTableName": "files"},
    }
    (state_dir / "runtime.json").write_text(json.dumps(state))


def test_a_stack_target_reads_the_cloudformation_outputs() -> None:
    cloudformation = CloudFormation({STATE_MACHINE_ARN: MACHINE, "FailedExecutionsQueueUrl": "https://q"})
    target = resolve_target(
        _args("--stack", "filepipe-prod", "--output", "FailedExecutionsQueueUrl=https://other"),
        client_factory=lambda service: cloudformation,
        environ={},
    )
    assert cloudformation.asked == ["filepipe-prod"]
    assert target.description == "stack filepipe-prod"
    assert target.receive_wait_seconds == 1  # SQS long polling
    assert target.output(STATE_MACHINE_ARN) == MACHINE
    assert target.output("FailedExecutionsQueueUrl") == "https://other"  # --output wins


def test_an_unknown_stack_is_a_clear_error() -> None:
    with pytest.raises(TargetError, match="cannot read stack nope"):
        resolve_target(_args("--stack", "nope"), client_factory=lambda service: Refusing(), environ={})


def test_the_running_local_runtime_is_the_default(tmp_path: Path) -> None:
    _write_state(tmp_path)
    target = resolve_target(_args("--state-dir", str(tmp_path)), environ={})

    assert target.description == "local runtime at http://127.0.0.1:8002"
    assert target.receive_wait_seconds == 0  # the local runtime's queues answer at once
    assert target.output(STATE_MACHINE_ARN) == MACHINE
    sqs = target.client("sqs")
    assert sqs.meta.endpoint_url == "http://127.0.0.1:8002"
    assert sqs.meta.region_name == "eu-west-1"
    assert target.client("sqs") is sqs  # one client per service


def test_another_endpoint_does_not_borrow_the_local_runtime_s_names(tmp_path: Path) -> None:
    _write_state(tmp_path)
    target = resolve_target(
        _args("--state-dir", str(tmp_path), "--endpoint", "http://127.0.0.1:9999/"), environ={}
    )
    assert target.description == "local runtime at http://127.0.0.1:9999"
    with pytest.raises(TargetError, match=f"--output {STATE_MACHINE_ARN}=VALUE"):
        target.output(STATE_MACHINE_ARN)


def test_the_endpoint_can_come_from_the_environment(tmp_path: Path) -> None:
    _write_state(tmp_path, endpoint="http://127.0.0.1:8002")
    target = resolve_target(
        _args("--state-dir", str(tmp_path)), environ={"FILEPIPE_ENDPOINT": "http://127.0.0.1:8002"}
    )
    assert target.output("FilesTableName") == "files"


def test_with_nothing_to_talk_to_the_error_says_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="--stack NAME"):
        resolve_target(_args("--state-dir", str(tmp_path / "none")), environ={})


def test_a_malformed_output_override_is_refused() -> None:
    with pytest.raises(TargetError, match="KEY=VALUE"):
        resolve_target(
            _args("--stack", "s", "--output", "novalue"), client_factory=lambda s: None, environ={}
        )


def test_the_identity_is_unknown_when_sts_does_not_answer() -> None:
    class Broken:
        def get_caller_identity(self) -> dict[str, Any]:
            raise ConnectionError("offline")

    target = Target("test", lambda service: Broken(), {})
    assert target.identity() == "unknown"
