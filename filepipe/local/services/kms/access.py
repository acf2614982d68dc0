"""KMS: key ARNs (aliases resolved to their key); the key policy must allow, as on AWS."""

from __future__ import annotations

from filepipe.local.iam import resource_policies
from filepipe.local.iam.calls import Access, Call, Needs

_NO_KEY = {"CreateKey", "ListKeys", "ListAliases", "GenerateRandom", "ListRetirableGrants"}


def needs(call: Call) -> Needs:
    action = f"kms:{call.operation}"
    key = call.params.get("KeyId") or call.params.get("TargetKeyId") or call.params.get("DestinationKeyId")
    if call.operation in _NO_KEY or not isinstance(key, str) or not key:
        # Decrypt may leave the key to the ciphertext; the runtime does not read moto's blob format.
        return Needs((Access(action, "*"),))
    account, region = call.account, call.region
    arn = resource_policies.key_arn(account, region, key)
    return Needs(
        (
            Access(
                action,
                arn,
                policy=lambda: resource_policies.key(account, region, arn),
                policy_required=True,
            ),
        )
    )
