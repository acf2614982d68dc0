"""Resource-based policies as moto stores them: buckets, queues, topics, keys, functions.

moto internals relied on: ``moto.s3.models.s3_backends[account]["aws"].buckets[name].policy`` (bytes),
``moto.sqs.models.sqs_backends[account][region].queues[name].policy``,
``moto.sns.models.sns_backends[account][region].topics[arn].policy``,
``moto.kms.models.kms_backends[account][region]`` (``any_id_to_key_id``, ``keys[id].policy``),
``moto.iam.models.iam_backends[account]["aws"].roles`` (``assume_role_policy_document``) and
``moto.awslambda.utils.get_backend(account, region)._lambdas._functions[name]["latest"].policy``
(``statements`` and ``revision``). Each text is parsed once (``policy.parse`` caches by text).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from filepipe.local.iam import policy
from filepipe.local.iam.policy import Policy


def bucket(account: str, name: str) -> Policy | None:
    from moto.s3.models import s3_backends

    found = s3_backends[account]["aws"].buckets.get(name)
    text = getattr(found, "policy", None)
    if not text:
        return None
    return policy.parse(text.decode() if isinstance(text, bytes) else str(text))


def queue(account: str, region: str, name: str) -> Policy | None:
    from moto.sqs.models import sqs_backends

    found = sqs_backends[account][region].queues.get(name)
    text = found.policy if found is not None else None
    return policy.parse(text) if text else None


def topic(account: str, region: str, arn: str) -> Policy | None:
    from moto.sns.models import sns_backends

    found = sns_backends[account][region].topics.get(arn)
    return policy.parse(found.policy) if found is not None else None


def key(account: str, region: str, key_id: str) -> Policy | None:
    from moto.kms.models import kms_backends

    backend = kms_backends[account][region]
    try:
        found = backend.keys.get(backend.any_id_to_key_id(key_id))
    except Exception:  # an alias moto does not know: no key, no policy
        return None
    return policy.parse(found.policy) if found is not None else None


def key_arn(account: str, region: str, key_id: str) -> str:
    """A key's ARN from its id, ARN or alias (the ARN IAM evaluates, never the alias's)."""
    from moto.kms.models import kms_backends

    if key_id.startswith("arn:") and ":key/" in key_id:
        return key_id
    try:
        resolved = kms_backends[account][region].any_id_to_key_id(key_id)
    except Exception:
        resolved = key_id
    return f"arn:aws:kms:{region}:{account}:key/{resolved}"


def role_trust(account: str, role_arn: str) -> Policy | None:
    """A role's trust policy: who may assume it (its resource-based policy)."""
    from moto.iam.models import iam_backends

    name = role_arn.rsplit("/", 1)[-1]
    for role in list(iam_backends[account]["aws"].roles.values()):
        if role.name == name:
            document = role.assume_role_policy_document
            return policy.parse(document if isinstance(document, str) else json.dumps(document))
    return None


def function(account: str, region: str, name: str) -> Policy | None:
    from moto.awslambda.utils import get_backend

    functions: Any = get_backend(account, region)._lambdas._functions
    entry = functions.get(name)
    if entry is None:
        return None
    held = entry["latest"].policy
    if not held.statements:
        return None
    # A function's policy changes only with a new revision: each revision is parsed once.
    with _lock:
        parsed = _function_policies.get((name, held.revision))
    if parsed is None:
        parsed = policy.from_documents([{"Statement": list(held.statements)}])
        with _lock:
            _function_policies[(name, held.revision)] = parsed
    return parsed


_function_policies: dict[tuple[str, str], Policy] = {}
_lock = threading.Lock()
