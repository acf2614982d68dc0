"""CloudWatch Logs resources: log groups and their retention."""

from __future__ import annotations

from typing import Any

from filepipe.local.stack.context import Created, Properties, Provisioning, ServiceHandlers
from filepipe.local.stack.tags import tag_map

HANDLERS = ServiceHandlers()


@HANDLERS.register("AWS::Logs::LogGroup")
def create_log_group(provisioning: Provisioning, logical: str, props: Properties) -> Created:
    logs = provisioning.client("logs")
    name = props.get("LogGroupName") or provisioning.name(logical, max_length=512)
    kwargs: dict[str, Any] = {"logGroupName": name}
    if "Tags" in props:
        kwargs["tags"] = tag_map(props["Tags"])
    logs.create_log_group(**kwargs)
    if "RetentionInDays" in props:
        logs.put_retention_policy(logGroupName=name, retentionInDays=int(props["RetentionInDays"]))
    return name, {"Arn": provisioning.arn("logs", f"log-group:{name}:*")}
