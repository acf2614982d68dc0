"""IAM resources: roles with their inline and managed policies."""

from __future__ import annotations

import json
from typing import Any

from filepipe.local.stack.context import Created, Properties, Provisioning, ServiceHandlers
from filepipe.local.stack.tags import tag_list

HANDLERS = ServiceHandlers()


@HANDLERS.register("AWS::IAM::Role")
def create_role(provisioning: Provisioning, logical: str, props: Properties) -> Created:
    iam = provisioning.client("iam")
    name = props.get("RoleName") or provisioning.name(logical, max_length=64)
    kwargs: dict[str, Any] = {
        "RoleName": name,
        "AssumeRolePolicyDocument": json.dumps(props["AssumeRolePolicyDocument"]),
    }
    for key in ("Path", "Description", "PermissionsBoundary"):
        if key in props:
            kwargs[key] = props[key]
    if "MaxSessionDuration" in props:
        kwargs["MaxSessionDuration"] = int(props["MaxSessionDuration"])
    if "Tags" in props:
        kwargs["Tags"] = tag_list(props["Tags"])
    arn = iam.create_role(**kwargs)["Role"]["Arn"]
    for policy in props.get("Policies", []):
        # IAM's API insists on a Version that CloudFormation lets templates leave out.
        document = {"Version": "2012-10-17", **policy["PolicyDocument"]}
        iam.put_role_policy(
            RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(document)
        )
    for policy_arn in props.get("ManagedPolicyArns", []):
        try:
            iam.attach_role_policy(RoleName=name, PolicyArn=policy_arn)
        except Exception:
            provisioning.warn(f"managed policy {policy_arn} is unknown locally and not attached", logical)
    if not provisioning.iam_enforced:
        provisioning.warn(
            "IAM roles and policies are created but not enforced locally (every call is allowed)"
        )
    return name, {"Arn": arn, "RoleId": name}
