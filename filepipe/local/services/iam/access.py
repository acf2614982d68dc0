"""IAM: roles, users and policies by their ARNs (paths are not known from a name: the root path)."""

from __future__ import annotations

from filepipe.local.iam.calls import Access, Call, Needs


def needs(call: Call) -> Needs:
    params = call.params
    action = f"iam:{call.operation}"
    if (
        isinstance(params.get("PolicyArn"), str)
        and "Role" not in call.operation
        and "User" not in call.operation
    ):
        return Needs((Access(action, params["PolicyArn"]),))
    for name, kind in (("RoleName", "role"), ("UserName", "user"), ("GroupName", "group")):
        if isinstance(params.get(name), str):
            return Needs((Access(action, f"arn:aws:iam::{call.account}:{kind}/{params[name]}"),))
    return Needs((Access(action, "*"),))
