"""SQS resources: queues and queue policies."""

from __future__ import annotations

import json
from typing import Any

from filepipe.local.stack.context import Created, Properties, Provisioning, ServiceHandlers
from filepipe.local.stack.tags import tag_map

HANDLERS = ServiceHandlers()


@HANDLERS.register("AWS::SQS::Queue")
def create_queue(provisioning: Provisioning, logical: str, props: Properties) -> Created:
    sqs = provisioning.client("sqs")
    name = props.get("QueueName") or provisioning.name(logical, max_length=80)
    if props.get("FifoQueue") and not name.endswith(".fifo"):
        name = name[:75] + ".fifo"
    attributes = {
        key: json.dumps(value)
        if isinstance(value, dict)
        else str(value).lower()
        if isinstance(value, bool)
        else str(value)
        for key, value in props.items()
        if key not in {"QueueName", "Tags"}
    }
    kwargs: dict[str, Any] = {"QueueName": name, "Attributes": attributes}
    if props.get("Tags"):
        kwargs["tags"] = tag_map(props["Tags"])
    url = sqs.create_queue(**kwargs)["QueueUrl"]
    return url, {"Arn": provisioning.arn("sqs", name), "QueueName": name, "QueueUrl": url}


@HANDLERS.register("AWS::SQS::QueuePolicy")
def create_queue_policy(provisioning: Provisioning, logical: str, props: Properties) -> Created:
    sqs = provisioning.client("sqs")
    for url in props["Queues"]:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(props["PolicyDocument"])})
    if not provisioning.iam_enforced:
        provisioning.warn("queue policies are stored but not enforced locally", logical)
    return provisioning.name(logical), {}
