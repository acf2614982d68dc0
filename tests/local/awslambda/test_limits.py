"""Lambda and CloudWatch limits that stop a deploy: each mutation of a copy of template.yaml is refused."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from filepipe.cli import build_parser
from filepipe.local import moto_patches
from filepipe.local.provision.provisioner import provision
from filepipe.local.server import LocalOptions
from filepipe.local.services.awslambda import quotas as lambda_quotas
from filepipe.local.services.awslambda.patches import lambda_concurrency_quota
from filepipe.local.stack.model import Stack
from filepipe.template import ROOT, TEMPLATE_PATH, load_template

REGION = "us-east-1"
# What template.yaml refers to by relative path: a copy beside them resolves the same code.
_TEMPLATE_FOLDERS = ("functions", "statemachines")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws(config={"lambda": {"use_docker": False}}):
        yield


@pytest.fixture
def concurrency_quota() -> Iterator[Callable[[int], None]]:
    """The local runtime's account quota for Lambda concurrency, installed as `filepipe local` does."""
    uninstall: list[Callable[[], None]] = []

    def install(quota: int) -> None:
        uninstall.append(moto_patches.install(lambda_concurrency_quota, quota))

    yield install
    for remove in reversed(uninstall):
        remove()


def template_copy(tmp_path: Path, mutate: Callable[[str], str]) -> Path:
    """template.yaml changed by ``mutate`` (which must change it), beside the folders it refers to."""
    text = TEMPLATE_PATH.read_text()
    mutated = mutate(text)
    assert mutated != text, "the mutation changed nothing"
    for folder in _TEMPLATE_FOLDERS:
        (tmp_path / folder).symlink_to(ROOT / folder, target_is_directory=True)
    path = tmp_path / "template.yaml"
    path.write_text(mutated)
    return path


def provision_copy(path: Path, **parameters: str) -> Stack:
    clients: dict[str, Any] = {}

    @cache
    def client(service: str) -> Any:
        return clients.setdefault(service, boto3.client(service, region_name=REGION))

    return provision(client, load_template(path, REGION), "limits", REGION, parameters)


def set_property(text: str, resource: str, name: str, value: str, indent: int = 6) -> str:
    """``name: value`` in ``resource``'s properties (indented as template.yaml indents them)."""
    start = text.index(f"\n  {resource}:\n")
    end = text.find("\n\n", start)
    block = text[start:end]
    changed, count = re.subn(rf"(\n {{{indent}}}{name}:)[^\n]*", rf"\1 {value}", block, count=1)
    assert count == 1, f"{resource} has no {name}"
    return text[:start] + changed + text[end:]


# ------------------------------------------------------------------ Lambda function configuration
@pytest.mark.parametrize(
    ("name", "value", "refusal"),
    [
        (
            "MemorySize",
            "12288",
            "InvalidParameterValueException): 'MemorySize' value failed to satisfy constraint: "
            "Member must have value less than or equal to 10240",
        ),
        (
            "MemorySize",
            "64",
            "ValidationException): 1 validation error detected: Value '64' at 'memorySize' failed to "
            "satisfy constraint: Member must have value greater than or equal to 128",
        ),
        (
            "Timeout",
            "1800",
            "ValidationException): 1 validation error detected: Value '1800' at 'timeout' failed to "
            "satisfy constraint: Member must have value less than or equal to 900",
        ),
    ],
)
def test_memory_or_timeout_lambda_refuses_stops_the_deployment(
    aws: None, tmp_path: Path, name: str, value: str, refusal: str
) -> None:
    path = template_copy(tmp_path, lambda text: set_property(text, "ValidateFunction", name, value))
    with pytest.raises(ValueError, match=re.escape(f"ValidateFunction: Lambda refuses it ({refusal}")):
        provision_copy(path)


def test_ephemeral_storage_over_10_gb_stops_the_deployment(aws: None, tmp_path: Path) -> None:
    path = template_copy(
        tmp_path, lambda text: set_property(text, "ValidateFunction", "Size", "20480", indent=8)
    )
    with pytest.raises(
        ValueError,
        match=re.escape(
            "ValidateFunction: Lambda refuses it (ValidationException): 1 validation error detected: Value "
            "'20480' at 'ephemeralStorage.size' failed to satisfy constraint: Member must have value less "
            "than or equal to 10240"
        ),
    ):
        provision_copy(path)


def test_environment_variables_over_4_kb_stop_the_deployment(aws: None, tmp_path: Path) -> None:
    # A configuration document put in a variable of every function instead of in a file or a parameter.
    aliases = json.dumps({f"application/x-type-{n}": f"type-{n}" for n in range(120)})
    path = template_copy(
        tmp_path,
        lambda text: text.replace(
            "        ALLOWED_TYPES: !Ref AllowedTypes\n",
            f"        ALLOWED_TYPES: !Ref AllowedTypes\n        TYPE_ALIASES: '{aliases}'\n",
            1,
        ),
    )
    with pytest.raises(
        ValueError, match=r"^\w+Function: Lambda refuses it \(InvalidParameterValueException\)"
    ) as refused:
        provision_copy(path)
    assert (
        "Lambda was unable to configure your environment variables because the environment variables you "
        "have provided exceeded the 4KB limit. String measured: {" in str(refused.value)
    )
    assert '"TYPE_ALIASES":' in str(refused.value)


def blocked_runtime(today: date) -> str:
    """A Python runtime Lambda no longer creates functions with, from its deprecation table."""
    blocked = [
        runtime
        for runtime, lifecycle in lambda_quotas.runtime_lifecycle().items()
        if runtime.startswith("python") and date.fromisoformat(str(lifecycle["create-block"])) <= today
    ]
    assert blocked, "no Python runtime is blocked yet"
    return sorted(blocked)[-1]


def test_a_runtime_lambda_no_longer_creates_functions_with_stops_the_deployment(
    aws: None, tmp_path: Path
) -> None:
    runtime = blocked_runtime(datetime.now(UTC).date())
    path = template_copy(
        tmp_path, lambda text: text.replace("    Runtime: python3.12", f"    Runtime: {runtime}", 1)
    )
    with pytest.raises(
        ValueError,
        match=rf"^\w+Function: Lambda refuses it \(InvalidParameterValueException\): The runtime parameter "
        rf"of {re.escape(runtime)} is no longer supported for creating or updating AWS Lambda functions\. We "
        r"recommend you use the new runtime \(python3\.\d+\) while creating or updating functions\.$",
    ):
        provision_copy(path)


def test_runtimes_are_refused_from_their_create_block_date_on() -> None:
    lifecycle = lambda_quotas.runtime_lifecycle()["python3.9"]
    blocked_from = date.fromisoformat(str(lifecycle["create-block"]))
    # Deprecated (no more patches) is not blocked: functions can still be created until the block date.
    assert date.fromisoformat(str(lifecycle["deprecated"])) < blocked_from
    lambda_quotas.check_runtime("python3.9", date.fromordinal(blocked_from.toordinal() - 1))
    with pytest.raises(
        lambda_quotas.LambdaRefusal, match=r"The runtime parameter of python3\.9 is no longer"
    ):
        lambda_quotas.check_runtime("python3.9", blocked_from)


def test_a_runtime_lambda_does_not_know_is_refused() -> None:
    with pytest.raises(lambda_quotas.LambdaRefusal) as refused:
        lambda_quotas.check_runtime("python3.21", date(2026, 1, 1))
    assert refused.value.code == "ValidationException"
    assert "Value 'python3.21' at 'runtime' failed to satisfy constraint: Member must satisfy enum" in str(
        refused.value
    )


# ------------------------------------------------------------------ reserved concurrency, account quota
def test_on_a_new_account_any_reservation_stops_the_deployment(
    aws: None, concurrency_quota: Callable[[int], None]
) -> None:
    concurrency_quota(lambda_quotas.NEW_ACCOUNT_CONCURRENCY_QUOTA)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "Function: Lambda refuses ReservedConcurrentExecutions 2 (InvalidParameterValueException): "
            "Specified ReservedConcurrentExecutions for function decreases account's "
            "UnreservedConcurrentExecution below its minimum value of [10]."
        ),
    ):
        provision(
            lambda service: boto3.client(service, region_name=REGION),
            load_template(region=REGION),
            "limits",
            REGION,
            {"PipelineConcurrency": "2"},
        )


def test_reservations_must_leave_100_of_the_quota_unreserved(
    aws: None, concurrency_quota: Callable[[int], None]
) -> None:
    concurrency_quota(1000)
    lambda_client = boto3.client("lambda", region_name=REGION)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role = boto3.client("iam", region_name=REGION).create_role(
        RoleName="limits", AssumeRolePolicyDocument=json.dumps(trust)
    )["Role"]["Arn"]
    for name in ("first", "second"):
        lambda_client.create_function(
            FunctionName=name, Runtime="python3.12", Role=role, Handler="x.h", Code={"ZipFile": b"x"}
        )
    lambda_client.put_function_concurrency(FunctionName="first", ReservedConcurrentExecutions=500)
    lambda_client.put_function_concurrency(FunctionName="second", ReservedConcurrentExecutions=400)
    # Reserving again replaces the function's own reservation rather than adding to it.
    lambda_client.put_function_concurrency(FunctionName="second", ReservedConcurrentExecutions=400)
    with pytest.raises(ClientError) as refused:
        lambda_client.put_function_concurrency(FunctionName="second", ReservedConcurrentExecutions=401)
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "below its minimum value of [100]." in refused.value.response["Error"]["Message"]


def test_the_account_quota_is_a_new_accounts_unless_the_command_says_otherwise() -> None:
    assert LocalOptions().lambda_concurrency_quota == lambda_quotas.NEW_ACCOUNT_CONCURRENCY_QUOTA == 10
    args = build_parser().parse_args(["local", "--lambda-concurrency-quota", "1000"])
    assert args.lambda_concurrency_quota == 1000
    assert build_parser().parse_args(["local"]).lambda_concurrency_quota == 10


# ------------------------------------------------------------------ CloudWatch: 10 metrics per alarm
def _extra_metric(number: int) -> str:
    return f"""
        - Id: extra{number}
          ReturnData: false
          MetricStat:
            Metric:
              Namespace: filepipe
              MetricName: NotificationsFailed
              Dimensions:
                - {{Name: step, Value: notify}}
                - {{Name: channel, Value: push{number}}}
                - {{Name: service, Value: filepipe}}
            Period: 300
            Stat: Sum"""


def _with_extra_metrics(text: str, count: int) -> str:
    anchor = (
        "                - {Name: channel, Value: event}\n"
        "                - {Name: service, Value: filepipe}\n"
        "            Period: 300\n"
        "            Stat: Sum"
    )
    assert text.count(anchor) == 1
    return text.replace(anchor, anchor + "".join(_extra_metric(n) for n in range(count)))


def test_an_eleventh_metric_in_the_templates_alarm_stops_the_deployment(aws: None, tmp_path: Path) -> None:
    # NotificationsFailedAlarm has 3 queries (2 metrics and their sum): 7 more fit, the 8th is one too many.
    path = template_copy(tmp_path, lambda text: _with_extra_metrics(text, 8))
    with pytest.raises(
        ValueError,
        match=r"NotificationsFailedAlarm: CloudWatch takes at most 10 metrics per alarm "
        r"\(MetricDataQueries\), this one has 11",
    ):
        provision_copy(path)


def test_ten_metrics_in_the_templates_alarm_are_accepted(aws: None, tmp_path: Path) -> None:
    stack = provision_copy(template_copy(tmp_path, lambda text: _with_extra_metrics(text, 7)))
    alarms = boto3.client("cloudwatch", region_name=REGION).describe_alarms(
        AlarmNames=[stack.physical["NotificationsFailedAlarm"]]
    )["MetricAlarms"]
    assert len(alarms[0]["Metrics"]) == 10
