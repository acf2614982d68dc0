"""STS: assuming a role needs the role's trust policy to allow it; asking who you are needs nothing."""

from __future__ import annotations

from filepipe.local.iam import resource_policies
from filepipe.local.iam.calls import Access, Call, Needs


def needs(call: Call) -> Needs:
    if call.operation in ("GetCallerIdentity", "GetSessionToken", "DecodeAuthorizationMessage"):
        return Needs(())  # no permission governs these
    role_arn = call.params.get("RoleArn")
    if call.operation.startswith("AssumeRole") and isinstance(role_arn, str):
        account = call.account
        action = "sts:AssumeRole" if call.operation == "AssumeRole" else f"sts:{call.operation}"
        return Needs(
            (
                Access(
                    action,
                    role_arn,
                    policy=lambda: resource_policies.role_trust(account, role_arn),
                    policy_required=True,
                ),
            )
        )
    return Needs((Access(f"sts:{call.operation}", "*"),))
