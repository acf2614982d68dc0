"""SQS: queue ARNs from queue URLs and names; batch actions are authorised as their single actions."""

from __future__ import annotations

from filepipe.local.iam import resource_policies
from filepipe.local.iam.calls import Access, Call, Needs

_BATCHES = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}
_NO_QUEUE = {"ListQueues", "ListMessageMoveTasks"}


def queue_name(call: Call) -> str | None:
    url = call.params.get("QueueUrl")
    if isinstance(url, str) and url:
        return url.rstrip("/").rsplit("/", 1)[-1]
    name = call.params.get("QueueName")
    if isinstance(name, str) and name:
        return name
    arn = call.params.get("SourceArn")
    if isinstance(arn, str) and arn.startswith("arn:"):
        return arn.rsplit(":", 1)[-1]
    # The query protocol may name the queue by its path alone: POST /123456789012/queue-name.
    parts = [part for part in call.path.split("/") if part]
    return parts[-1] if len(parts) == 2 and parts[0].isdigit() else None


def needs(call: Call) -> Needs:
    action = f"sqs:{_BATCHES.get(call.operation, call.operation)}"
    name = None if call.operation in _NO_QUEUE else queue_name(call)
    if name is None:
        return Needs((Access(action, "*"),))
    account, region, queue = call.account, call.region, name
    return Needs(
        (
            Access(
                action, call.arn("sqs", queue), policy=lambda: resource_policies.queue(account, region, queue)
            ),
        )
    )
