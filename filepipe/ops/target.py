"""What the operator commands talk to: a deployed stack (CloudFormation outputs) or the local runtime."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from filepipe.runtime_state import read_state

ClientFactory = Callable[[str], Any]

ENDPOINT_ENV = "FILEPIPE_ENDPOINT"
DEFAULT_REGION = "us-east-1"
# moto accepts any key; a real one must never be sent to the local runtime.
LOCAL_CREDENTIALS = {"aws_access_key_id": "filepipe-local", "aws_secret_access_key": "filepipe-local"}

STATE_MACHINE_ARN = "StateMachineArn"
# The RescanFiles state machine, which scans stored READY files again (`filepipe rescan`).
RESCAN_STATE_MACHINE_ARN = "RescanStateMachineArn"
FAILED_EXECUTIONS_QUEUE_URL = "FailedExecutionsQueueUrl"
START_DEAD_LETTER_QUEUE_URL = "StartDeadLetterQueueUrl"
FILES_TABLE_NAME = "FilesTableName"
INGEST_BUCKET_NAME = "IngestBucketName"
# Who scans uploads (GuardDuty or ClamAV): replay asks GuardDuty for new scans.
SCANNER = "Scanner"
GUARDDUTY = "GuardDuty"

# The two dead-letter queues replay reads, by short name, and the outputs that give their URLs.
FAILED_QUEUE = "failed"
START_QUEUE = "start"
DEAD_LETTER_QUEUES = {FAILED_QUEUE: FAILED_EXECUTIONS_QUEUE_URL, START_QUEUE: START_DEAD_LETTER_QUEUE_URL}


class TargetError(Exception):
    """No usable target, or it lacks an output a command needs; the message says what to pass."""


@dataclass
class Target:
    """Clients for one environment and its stack outputs (names as in template.yaml's Outputs)."""

    description: str
    client_factory: ClientFactory
    outputs: Mapping[str, str]
    # How long replay waits for SQS messages: long polling on AWS, so an empty answer means an empty
    # queue; the local runtime's queues answer at once.
    receive_wait_seconds: int = 1
    # Where a person looks at an execution: the AWS console for a stack, else the local runtime's console
    # (the address it printed, token included); neither for an endpoint whose runtime did not record one.
    aws_console: bool = False
    local_console_url: str | None = None
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.client_factory(service)
        return self._clients[service]

    def output(self, name: str) -> str:
        value = self.outputs.get(name)
        if not value:
            known = ", ".join(sorted(self.outputs)) or "none"
            raise TargetError(
                f"{self.description} has no output {name} (known: {known}); pass --output {name}=VALUE"
            )
        return value

    def console_link(self, execution_arn: str) -> str | None:
        """A browser address showing one execution, or None when this target has no console."""
        if self.aws_console:
            region = execution_arn.split(":")[3]
            return (
                f"https://{region}.console.aws.amazon.com/states/home?region={region}"
                f"#/v2/executions/details/{execution_arn}"
            )
        if self.local_console_url:
            base, _, fragment = self.local_console_url.partition("#")
            name = quote(execution_arn.rsplit(":", 1)[-1], safe="")
            return f"{base.rstrip('/')}/executions/{name}" + (f"#{fragment}" if fragment else "")
        return None

    def identity(self) -> str:
        """The caller's principal ARN, for the audit log; "unknown" when STS does not answer."""
        try:
            return str(self.client("sts").get_caller_identity()["Arn"])
        except Exception:
            return "unknown"


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("target (default: the running local runtime)")
    group.add_argument("--stack", metavar="NAME", help="a deployed stack: names come from its outputs")
    group.add_argument(
        "--endpoint",
        metavar="URL",
        help=f"the local runtime's AWS endpoint (default: ${ENDPOINT_ENV}, else the running one)",
    )
    group.add_argument(
        "--state-dir", type=Path, help="state directory of `filepipe local` (default: its default)"
    )
    group.add_argument("--region", help="AWS region (default: the SDK's, or the local runtime's)")
    group.add_argument(
        "--output",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="set or override one stack output, e.g. --output StateMachineArn=arn:...",
    )


def _parse_overrides(pairs: list[str]) -> dict[str, str]:
    overrides: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise TargetError(f"--output wants KEY=VALUE, got {pair!r}")
        overrides[key.strip()] = value.strip()
    return overrides


def read_local_state(state_dir: Path | None) -> dict[str, Any] | None:
    """What the running `filepipe local` recorded: awsEndpoint, region, credentials, outputs."""

    return read_state(state_dir)


def _local_credentials(state: Mapping[str, Any] | None) -> dict[str, str]:
    recorded = (state or {}).get("credentials") or {}
    if recorded.get("accessKeyId") and recorded.get("secretAccessKey"):
        return {
            "aws_access_key_id": str(recorded["accessKeyId"]),
            "aws_secret_access_key": str(recorded["secretAccessKey"]),
        }
    return dict(LOCAL_CREDENTIALS)


def _boto3_factory(
    region: str | None, endpoint: str | None = None, credentials: Mapping[str, str] | None = None
) -> ClientFactory:
    def factory(service: str) -> Any:
        import boto3  # deferred: only the commands that talk to a service pay for it
        from botocore.config import Config

        session = boto3.session.Session(region_name=region, **dict(credentials or {}))
        config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=30)
        make_client: Any = session.client  # typed per service by boto3-stubs when installed; untyped here
        return make_client(service, endpoint_url=endpoint, config=config)

    return factory


def stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except Exception as error:
        raise TargetError(f"cannot read stack {stack_name}: {error}") from error
    if not stacks:
        raise TargetError(f"no stack named {stack_name}")
    return {item["OutputKey"]: item["OutputValue"] for item in stacks[0].get("Outputs", [])}


def resolve_target(
    args: argparse.Namespace,
    client_factory: ClientFactory | None = None,
    environ: Mapping[str, str] | None = None,
) -> Target:
    """--stack, else --endpoint (or $FILEPIPE_ENDPOINT), else the running `filepipe local`.

    ``client_factory`` replaces the boto3 clients (tests hand in moto's); --output always wins.
    """
    environ = os.environ if environ is None else environ
    overrides = _parse_overrides(list(getattr(args, "output", None) or []))
    region = getattr(args, "region", None)
    stack_name = getattr(args, "stack", None)
    endpoint = getattr(args, "endpoint", None) or environ.get(ENDPOINT_ENV)

    if stack_name:
        factory = client_factory or _boto3_factory(region, endpoint)
        outputs = stack_outputs(factory("cloudformation"), stack_name)
        return Target(f"stack {stack_name}", factory, {**outputs, **overrides}, aws_console=True)

    state = read_local_state(getattr(args, "state_dir", None))
    recorded = str(state.get("awsEndpoint") or "").rstrip("/") if state else ""
    if endpoint is None and recorded:
        endpoint = recorded
    if endpoint is None:
        if client_factory is not None and overrides:
            return Target("the given clients", client_factory, overrides)
        raise TargetError(
            "nothing to talk to: pass --stack NAME for a deployed stack, start the local runtime "
            "(`make local`), or pass --endpoint URL with --output NAME=VALUE for each stack output "
            "the command needs"
        )
    endpoint = endpoint.rstrip("/")
    # The recorded outputs belong to the recorded endpoint only.
    same_runtime = state is not None and endpoint == recorded
    outputs = dict(state.get("outputs") or {}) if state is not None and same_runtime else {}
    region = region or (state.get("region") if state is not None and same_runtime else None) or DEFAULT_REGION
    credentials = _local_credentials(state if same_runtime else None)
    factory = client_factory or _boto3_factory(region, endpoint, credentials)
    console = (state.get("console") or {}).get("url") if state is not None and same_runtime else None
    return Target(
        f"local runtime at {endpoint}",
        factory,
        {**outputs, **overrides},
        receive_wait_seconds=0,
        local_console_url=str(console) if console else None,
    )
