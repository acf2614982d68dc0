"""The decision AWS makes for one action on one resource: explicit deny, then an allow, else deny."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from filepipe.local.iam.patterns import ContextValue
from filepipe.local.iam.policy import Policy
from filepipe.local.iam.principals import Principal


@dataclass(frozen=True)
class Decision:
    """Allowed, or refused with the clause AWS's refusal message ends with."""

    allowed: bool
    reason: str = ""


ALLOWED = Decision(True)


def decide(
    principal: Principal,
    action: str,
    resource: str,
    context: Mapping[str, ContextValue],
    resource_policy: Policy | None = None,
    *,
    resource_policy_required: bool = False,
) -> Decision:
    """Same-account evaluation (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html).

    An explicit Deny in any policy refuses. Otherwise the identity-based policies or the resource-based
    policy may allow, except where the resource policy must (a KMS key policy): there an identity policy
    counts only when the key policy delegates to the account. Permissions boundaries and session policies
    (``limits``) can only narrow what is allowed. Service principals and anonymous callers have no
    identity policies: only a resource policy naming them allows.
    """
    identity = (
        principal.identity.verdict(action, resource, context) if principal.has_identity_policies else None
    )
    if identity is not None and identity.denies:
        return Decision(False, "with an explicit deny in an identity-based policy")
    for limit in principal.limits:
        if limit.verdict(action, resource, context).denies:
            return Decision(False, "with an explicit deny in an identity-based policy")
    granted = identity is not None and identity.allows
    by_resource = resource_policy.verdict(action, resource, context, principal) if resource_policy else None
    if by_resource is not None and by_resource.denies:
        return Decision(False, "with an explicit deny in a resource-based policy")
    if resource_policy_required:
        allowed = by_resource is not None and (by_resource.allows or (by_resource.delegates and granted))
    else:
        allowed = granted or (by_resource is not None and by_resource.allows)
    if allowed and granted and principal.limits:
        allowed = all(limit.allows(action, resource, context) for limit in principal.limits)
    if allowed:
        return ALLOWED
    if not principal.has_identity_policies or (resource_policy_required and granted):
        return Decision(False, f"because no resource-based policy allows the {action} action")
    return Decision(False, f"because no identity-based policy allows the {action} action")
