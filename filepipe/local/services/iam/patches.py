"""IAM's patches to moto: only the AWS managed policies the template uses, and access keys' secrets."""

from __future__ import annotations

import json
from collections.abc import Iterable

from filepipe.local.moto_patches import Uninstall, moto_patch, replace


@moto_patch("moto.iam.models.aws_managed_policies_data")
def load_only_managed_policies(managed_policy_arns: Iterable[str]) -> Uninstall:
    """moto loads all ~1500 AWS managed policies into every IAM backend (seconds); keep the ones used."""
    import moto.iam.models as iam_models

    data: str = iam_models.aws_managed_policies_data
    decoder = json.JSONDecoder()
    kept = {}
    for name in sorted({arn.rsplit("/", 1)[-1] for arn in managed_policy_arns}):
        # Decode just this policy's entry of the 4.7 MB document (a top-level "Name": {...} member).
        marker = data.find(f'"{name}":')
        if marker == -1:
            continue
        start = marker + len(name) + 3
        while data[start].isspace():
            start += 1
        kept[name], _ = decoder.raw_decode(data, start)
    return replace(iam_models, aws_managed_policies_data=json.dumps(kept))


def access_key_secret(access_key: str) -> str | None:
    """The secret of an access key created through moto's IAM API, if any.

    Relies on ``moto.iam.models.iam_backends`` (accounts, then partitions) and each backend's
    ``access_keys``, whose ``secret_access_key`` it reads.
    """
    from moto.iam.models import iam_backends

    for account in list(iam_backends.values()):
        for backend in list(account.values()):
            key = backend.access_keys.get(access_key)
            if key is not None:
                return str(key.secret_access_key)
    return None
