"""KMS resources: keys with their key policies and rotation."""

from __future__ import annotations

import json
from typing import Any

from filepipe.local.stack.context import Created, Properties, Provisioning, ServiceHandlers

HANDLERS = ServiceHandlers()


@HANDLERS.register("AWS::KMS::Key")
def create_key(provisioning: Provisioning, logical: str, props: Properties) -> Created:
    kms = provisioning.client("kms")
    kwargs: dict[str, Any] = {"Policy": json.dumps(props["KeyPolicy"])}
    for key in ("Description", "KeyUsage", "KeySpec"):
        if key in props:
            kwargs[key] = props[key]
    if "Tags" in props:
        kwargs["Tags"] = [{"TagKey": t["Key"], "TagValue": t["Value"]} for t in props["Tags"]]
    key_id = kms.create_key(**kwargs)["KeyMetadata"]["KeyId"]
    if props.get("EnableKeyRotation"):
        kms.enable_key_rotation(KeyId=key_id)
    return key_id, {"Arn": provisioning.arn("kms", f"key/{key_id}"), "KeyId": key_id}
