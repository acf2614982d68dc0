"""The template and the state machine definition: lint, offline transform, and their contracts."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from common import errors
from filepipe.template import ROOT, TEMPLATE_PATH, Resolver, Template, substitute_definition
from filepipe.workflow import DefinitionError, check_definition

ASL_PATH = ROOT / "statemachines" / "process_upload.asl.json"
TRANSIENT_LAMBDA_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}


DOMAIN_ERRORS = {
    name
    for name, value in vars(errors).items()
    if isinstance(value, type) and issubclass(value, errors.FilepipeError)
}


def _definition() -> dict[str, Any]:
    return json.loads(ASL_PATH.read_text())


def test_template_passes_cfn_lint() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), str(TEMPLATE_PATH)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_template_transforms_offline(template: Template) -> None:
    types = {resource["Type"] for resource in template.resources.values()}
    assert "AWS::StepFunctions::StateMachine" in types
    assert "AWS::Lambda::Function" in types
    assert not any(t.startswith("AWS::Serverless::") for t in types)


def test_every_resource_has_a_comment() -> None:
    lines = TEMPLATE_PATH.read_text().splitlines()
    resources = lines.index("Resources:")
    outputs = lines.index("Outputs:")
    for number in range(resources + 1, outputs):
        line = lines[number]
        if (
            len(line) - len(line.lstrip()) == 2
            and line.rstrip().endswith(":")
            and not line.lstrip().startswith("#")
        ):
            assert lines[number - 1].lstrip().startswith("#"), f"resource without a comment: {line.strip()}"


def test_functions_use_a_supported_python_runtime(template: Template) -> None:
    for name, resource in template.of_type("AWS::Lambda::Function").items():
        if resource["Properties"].get("PackageType") == "Image":
            continue  # no runtime: its image brings its Python (tests/unit/test_scan_image.py checks it)
        runtime = resource["Properties"]["Runtime"]
        assert runtime.startswith("python3."), f"{name}: {runtime}"
        assert int(runtime.split(".")[1]) >= 12, f"{name}: {runtime}"


# Actions IAM authorises against no resource type (Service Authorization Reference), so "*" is their only
# resource: log delivery, and the Step Functions callbacks (the task token names the task).
UNSCOPABLE_ACTIONS = {"states:SendTaskSuccess", "states:SendTaskFailure"}


def test_policies_name_actions_and_resources(template: Template) -> None:
    for name, role in template.of_type("AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                actions = (
                    statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                )
                assert all("*" not in action for action in actions), f"{name}: wildcard action {actions}"
                if statement.get("Resource") == "*":
                    assert all(
                        action.startswith("logs:") or action in UNSCOPABLE_ACTIONS for action in actions
                    ), f"{name}: Resource * for {actions}"


def test_definition_substitutions_match_the_definition_both_ways(template: Template) -> None:
    machine = template.resources["ProcessUploadStateMachine"]["Properties"]
    names = set(machine["DefinitionSubstitutions"])
    definition = template.definitions["ProcessUploadStateMachine"]
    substitute_definition(definition, {name: "arn" for name in names})
    with pytest.raises(KeyError, match="has no"):
        substitute_definition(definition, {name: "arn" for name in sorted(names)[1:]})
    with pytest.raises(KeyError, match="not used"):
        substitute_definition(definition, {**{name: "arn" for name in names}, "StrayFunctionArn": "arn"})


def test_the_definition_is_well_formed() -> None:
    check_definition(_definition(), DOMAIN_ERRORS)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["States"]["Validate file"].update(Type="Tsak"), "unknown state type"),
        (lambda d: d["States"]["Validate file"].update(Next="Scan for malwar"), "does not exist"),
        (lambda d: d["States"]["Validate file"].pop("TimeoutSeconds"), "TimeoutSeconds"),
        (
            lambda d: d["States"]["Scan for malware"]["Retry"][0].update(ErrorEquals=["ScannerUnavailabel"]),
            "unknown error",
        ),
        (
            lambda d: d["States"]["Validate file"]["Retry"].insert(0, {"ErrorEquals": ["FileRejected"]}),
            "never retried",
        ),
        (lambda d: d["States"]["Validate file"].pop("Catch"), "without a Catch"),
        (lambda d: d.update(StartAt="Nowhere"), "does not exist"),
    ],
    ids=[
        "misspelled type",
        "dangling next",
        "no timeout",
        "misspelled error",
        "retried domain error",
        "no catch",
        "bad start",
    ],
)
def test_the_definition_check_catches_mistakes(mutate: Any, message: str) -> None:
    definition = copy.deepcopy(_definition())
    mutate(definition)
    with pytest.raises(DefinitionError, match=message):
        check_definition(definition, DOMAIN_ERRORS)


def test_every_task_retries_transient_lambda_errors() -> None:
    for name, state in _all_states(_definition()):
        if state["Type"] == "Task":
            retried = {error for retry in state.get("Retry", []) for error in retry["ErrorEquals"]}
            assert retried >= TRANSIENT_LAMBDA_ERRORS, name


def test_error_names_in_the_definition_are_domain_error_classes() -> None:
    for _name, state in _all_states(_definition()):
        for clause in [*state.get("Retry", []), *state.get("Catch", [])]:
            for error in clause["ErrorEquals"]:
                if "." not in error:
                    assert isinstance(getattr(errors, error, None), type), error


def _all_states(definition: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, state in definition["States"].items():
        found.append((name, state))
        for branch in state.get("Branches", []):
            found.extend(_all_states(branch))
    return found


def test_payloads_between_states_stay_small() -> None:
    # Each Task's ResultSelector keeps only references and small facts, never file data.
    for name, state in _all_states(_definition()):
        if state["Type"] == "Task" and state.get("ResultPath") is not None:
            assert "ResultSelector" in state, f"{name} would pass the whole Lambda response along"


def test_sample_events_are_valid_json() -> None:
    for path in Path(ROOT / "events").rglob("*.json"):
        json.loads(path.read_text())


def test_every_function_has_an_errors_alarm_in_the_composite_alarm(template: Template) -> None:
    resources = template.resources
    functions = {name for name, r in resources.items() if r["Type"] == "AWS::Lambda::Function"}
    alarmed = {
        name: r["Properties"]["Dimensions"][0]["Value"]["Ref"]
        for name, r in resources.items()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"].get("MetricName") == "Errors"
    }
    assert set(alarmed.values()) == functions
    rule = json.dumps(resources["FunctionErrorsAlarm"]["Properties"]["AlarmRule"])
    assert {name for name in alarmed if f"ALARM(${{{name}}})" in rule} == set(alarmed)


def test_no_alarm_exceeds_cloudwatchs_metric_limit(template: Template) -> None:
    for name, resource in template.resources.items():
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            assert len(resource["Properties"].get("Metrics", [])) <= 10, name


def _bucket_policies(template: Template) -> dict[str, list[dict[str, Any]]]:
    return {
        resource["Properties"]["Bucket"]["Ref"]: resource["Properties"]["PolicyDocument"]["Statement"]
        for resource in template.resources.values()
        if resource["Type"] == "AWS::S3::BucketPolicy"
    }


def _buckets(template: Template) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template.resources.items() if r["Type"] == "AWS::S3::Bucket"}


def test_every_bucket_refuses_plain_http(template: Template) -> None:
    policies = _bucket_policies(template)
    for bucket in _buckets(template):
        denials = [
            statement
            for statement in policies.get(bucket, [])
            if statement["Effect"] == "Deny"
            and statement["Principal"] == "*"
            and statement["Action"] == "s3:*"
            and statement["Condition"] == {"Bool": {"aws:SecureTransport": False}}
        ]
        assert len(denials) == 1, f"{bucket} accepts requests without TLS"
        covered = denials[0]["Resource"]
        assert {"Fn::GetAtt": [bucket, "Arn"]} in covered, bucket  # the bucket itself
        assert {"Fn::Sub": f"${{{bucket}.Arn}}/*"} in covered, bucket  # and its objects


def test_the_files_bucket_keeps_deleted_files(template: Template) -> None:
    files = _buckets(template)["FilesBucket"]
    assert files["DeletionPolicy"] == files["UpdateReplacePolicy"] == "Retain"
    assert files["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}
    rules = files["Properties"]["LifecycleConfiguration"]["Rules"]
    kept = [rule for rule in rules if "NoncurrentVersionExpiration" in rule]
    assert kept[0]["NoncurrentVersionExpiration"]["NoncurrentDays"] == {"Ref": "DeletedFileRetentionDays"}
    assert not any("ExpirationInDays" in rule for rule in rules)  # current versions never expire


def test_buckets_cloudfront_and_the_http_api_write_access_logs(template: Template) -> None:
    buckets = _buckets(template)
    logged = {name for name, r in buckets.items() if "LoggingConfiguration" in r["Properties"]}
    assert logged == set(buckets) - {"AccessLogsBucket"}
    distribution = template.resources["SiteDistribution"]["Properties"]["DistributionConfig"]
    assert distribution["Logging"]["Bucket"] == {"Fn::GetAtt": ["AccessLogsBucket", "DomainName"]}
    stages = [r for r in template.resources.values() if r["Type"] == "AWS::ApiGatewayV2::Stage"]
    assert stages
    assert all("AccessLogSettings" in stage["Properties"] for stage in stages)


def test_account_wide_names_differ_between_regions(template: Template) -> None:
    # CloudFront access controls and CloudWatch dashboards are named once per account, whatever the region.
    def resolved(region: str, value: Any) -> Any:
        pseudo = {
            "AWS::Region": region,
            "AWS::StackName": "filepipe",
            "AWS::AccountId": "123456789012",
            "AWS::StackId": f"arn:aws:cloudformation:{region}:123456789012:stack/filepipe/{uuid.uuid4()}",
            "AWS::Partition": "aws",
        }
        return Resolver({}, pseudo, lambda name: name, lambda name, attribute: f"{name}.{attribute}")(value)

    names = [
        template.resources["SiteOriginAccessControl"]["Properties"]["OriginAccessControlConfig"]["Name"],
        template.resources["OperationsDashboard"]["Properties"]["DashboardName"],
    ]
    for name in names:
        assert resolved("us-east-1", name) != resolved("eu-west-1", name)
        assert len(resolved("us-east-1", name)) <= 64


def test_named_regional_resources_carry_the_stack_name(template: Template) -> None:
    # A staging and a production stack in one account and region must not collide on a fixed name.
    named = {
        "AWS::Scheduler::Schedule": "Name",
        "AWS::StepFunctions::StateMachine": "StateMachineName",
        "AWS::Events::EventBus": "Name",
        "AWS::Logs::LogGroup": "LogGroupName",
    }
    for logical, resource in template.resources.items():
        prop = named.get(resource["Type"])
        if prop and prop in resource["Properties"]:
            assert "${AWS::StackName}" in json.dumps(resource["Properties"][prop]), logical
