"""SNS: topic ARNs of publishes, subscriptions and topic settings."""

from __future__ import annotations

from filepipe.local.iam import resource_policies
from filepipe.local.iam.calls import Access, Call, Needs

_ACTIONS = {"PublishBatch": "Publish"}


def needs(call: Call) -> Needs:
    params = call.params
    action = f"sns:{_ACTIONS.get(call.operation, call.operation)}"
    topic = params.get("TopicArn") or params.get("TargetArn") or params.get("ResourceArn")
    if not topic and call.operation == "CreateTopic" and params.get("Name"):
        topic = call.arn("sns", str(params["Name"]))
    if not topic and params.get("SubscriptionArn"):
        topic = str(params["SubscriptionArn"]).rsplit(":", 1)[0]
    if not topic:
        return Needs((Access(action, "*"),))
    arn, account, region = str(topic), call.account, call.region
    return Needs((Access(action, arn, policy=lambda: resource_policies.topic(account, region, arn)),))
