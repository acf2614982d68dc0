"""A Malware Protection plan is provisioned as CloudFormation creates it, or refused as GuardDuty refuses."""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from filepipe.local.enforcement.enforcer import Enforcer
from filepipe.local.enforcement.sessions import assume_refusal
from filepipe.local.provision.provisioner import provision
from filepipe.local.services.guardduty.plans import plan_for_bucket
from filepipe.local.services.guardduty.protection import check_plan_roles, stack_plans
from filepipe.local.stack.model import Stack
from filepipe.template import load_template
from tests.local.guardduty.stacks import ACCOUNT, REGION, write_template
from tests.local.provisioning import Mutation, replace

PLAN_ROLE = "      Role: !GetAtt MalwareScanRole.Arn\n"
TRUSTED_SERVICE = "              Service: malware-protection-plan.guardduty.amazonaws.com\n"
PREFIXES = "          ObjectPrefixes: [uploads/]\n"
SECOND_PLAN = """
  SecondProtectionPlan:
    Type: AWS::GuardDuty::MalwareProtectionPlan
    Properties:
      Role: !GetAtt MalwareScanRole.Arn
      ProtectedResource:
        S3Bucket:
          BucketName: !Ref UploadsBucket
"""


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield


def _provision(folder: Path, *mutations: Mutation) -> Stack:
    template = load_template(write_template(folder, *mutations), REGION)
    return provision(client, template, "guardduty-test", REGION, iam_enforced=True)


def test_ref_is_the_plan_id_and_get_att_reads_what_cloudformation_returns(aws: None, tmp_path: Path) -> None:
    stack = _provision(tmp_path)

    plan_id = stack.physical["UploadsProtectionPlan"]
    assert re.fullmatch(r"[0-9a-f]{20}", plan_id)
    attributes = stack.attributes["UploadsProtectionPlan"]
    assert attributes["MalwareProtectionPlanId"] == plan_id
    assert attributes["Arn"] == f"arn:aws:guardduty:{REGION}:{ACCOUNT}:malware-protection-plan/{plan_id}"
    assert stack.outputs["PlanArn"] == attributes["Arn"]
    assert (attributes["Status"], attributes["StatusReasons"]) == ("ACTIVE", [])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", attributes["CreatedAt"])
    plan = plan_for_bucket(ACCOUNT, REGION, stack.physical["UploadsBucket"])
    assert plan is not None
    assert (plan.plan_id, plan.object_prefixes, plan.tagging) == (plan_id, ("uploads/",), True)
    assert plan.role_arn.endswith(f":role/{stack.physical['MalwareScanRole']}")
    assert [warning for warning in stack.warnings if "UploadsProtectionPlan" in warning] == [
        "GuardDuty Malware Protection scans with the local clamd; GuardDuty's engines, scan latency, plan "
        "status and managed EventBridge rule are not emulated: UploadsProtectionPlan"
    ]  # and no property the handler did not read


def test_a_plan_covers_its_prefixes_or_the_whole_bucket(aws: None, tmp_path: Path) -> None:
    stack = _provision(tmp_path, replace(PREFIXES, ""))
    plan = stack_plans(ACCOUNT, REGION, stack.physical)["UploadsProtectionPlan"]

    assert plan.covers("anything/at/all")
    prefixed = dataclasses.replace(plan, object_prefixes=("uploads/", "inbox/"))
    assert prefixed.covers("inbox/a")
    assert not prefixed.covers("other/uploads/a")


def test_a_role_that_does_not_exist_is_refused(aws: None, tmp_path: Path) -> None:
    missing = f"      Role: arn:aws:iam::{ACCOUNT}:role/no-such-role\n"

    with pytest.raises(
        ValueError,
        match=re.escape(
            f"UploadsProtectionPlan: GuardDuty refuses it (BadRequestException): The role "
            f"arn:aws:iam::{ACCOUNT}:role/no-such-role does not exist."
        ),
    ):
        _provision(tmp_path, replace(PLAN_ROLE, missing))


def test_a_role_named_rather_than_given_by_arn_is_refused(aws: None, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"BadRequestException\): The role must be the ARN of an IAM role"):
        _provision(tmp_path, replace(PLAN_ROLE, "      Role: !Ref MalwareScanRole\n"))


def test_a_second_plan_for_the_same_bucket_is_a_conflict(aws: None, tmp_path: Path) -> None:
    # Whichever comes second in CloudFormation's order fails.
    conflict = r"ProtectionPlan: GuardDuty refuses it \(ConflictException\): The bucket \S+ is protected by"
    with pytest.raises(ValueError, match=conflict):
        _provision(tmp_path, replace("\nResources:\n", "\nResources:\n" + SECOND_PLAN))


def test_more_than_five_prefixes_are_refused(aws: None, tmp_path: Path) -> None:
    six = "          ObjectPrefixes: [a/, b/, c/, d/, e/, f/]\n"

    with pytest.raises(ValueError, match=r"BadRequestException\): .* at most 5 object prefixes, not 6"):
        _provision(tmp_path, replace(PREFIXES, six))


@pytest.mark.parametrize(
    ("trusted", "refused"),
    [
        ("              Service: malware-protection-plan.guardduty.amazonaws.com\n", False),
        ("              Service: malware-protection.guardduty.amazonaws.com\n", True),  # the EC2 scans' SLR
        ("              Service: ec2.amazonaws.com\n", True),
    ],
    ids=["the-plan-service", "guardduty-ec2-scans", "ec2"],
)
def test_guardduty_must_be_able_to_assume_the_plans_role(
    aws: None, tmp_path: Path, trusted: str, refused: bool
) -> None:
    stack = _provision(tmp_path, replace(TRUSTED_SERVICE, trusted))
    plans = stack_plans(ACCOUNT, REGION, stack.physical)
    check = functools.partial(
        check_plan_roles, plans, functools.partial(assume_refusal, Enforcer(ACCOUNT, REGION))
    )

    if not refused:
        check()
        return
    prefix = "UploadsProtectionPlan: GuardDuty refuses it (BadRequestException): GuardDuty cannot assume"
    with pytest.raises(ValueError, match=f"^{re.escape(prefix)}") as raised:
        check()
    role = plans["UploadsProtectionPlan"].role_arn
    assert f"cannot assume the role {role}: User: malware-protection-plan.guardduty.amazonaws.com" in str(
        raised.value
    )
    assert "is not authorized to perform: sts:AssumeRole" in str(raised.value)
