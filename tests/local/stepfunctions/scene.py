"""What the Step Functions tests against `filepipe local` share: clients of its endpoint, a workflow role."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3

from filepipe.runtime_state import ACCESS_KEY_ID, SECRET_ACCESS_KEY
from tests.local.conftest import LocalProcess

REGION = "us-east-1"


def clients(local_stack: LocalProcess) -> Callable[[str], Any]:
    """A client factory for the runtime's AWS endpoint, signed with its printed credentials."""
    session = boto3.session.Session(
        aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY, region_name=REGION
    )

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=local_stack.aws_endpoint)

    return client


def workflow_role(iam: Any, name: str, statements: list[dict[str, Any]]) -> str:
    """A role Step Functions may assume, allowed ``statements``; its ARN."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    policy = {"Version": "2012-10-17", "Statement": statements}
    iam.put_role_policy(RoleName=name, PolicyName="allowed", PolicyDocument=json.dumps(policy))
    return str(role["Arn"])
