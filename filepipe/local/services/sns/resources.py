"""SNS resources: topics and subscriptions."""

from __future__ import annotations

from typing import Any

from filepipe.local.stack.context import Created, Properties, Provisioning, ServiceHandlers
from filepipe.local.stack.tags import tag_list

HANDLERS = ServiceHandlers()


@HANDLERS.register("AWS::SNS::Topic")
def create_topic(provisioning: Provisioning, logical: str, props: Properties) -> Created:
    name = props.get("TopicName") or provisioning.name(logical, max_length=256)
    attributes = {
        key: str(props[key]) for key in ("KmsMasterKeyId", "DisplayName", "FifoTopic") if key in props
    }
    kwargs: dict[str, Any] = {"Name": name, "Attributes": attributes}
    if "Tags" in props:
        kwargs["Tags"] = tag_list(props["Tags"])
    arn = provisioning.client("sns").create_topic(**kwargs)["TopicArn"]
    return arn, {"TopicArn": arn, "TopicName": name}


@HANDLERS.register("AWS::SNS::Subscription")
def create_subscription(provisioning: Provisioning, logical: str, props: Properties) -> Created:
    arn = provisioning.client("sns").subscribe(
        TopicArn=props["TopicArn"], Protocol=props["Protocol"], Endpoint=props["Endpoint"]
    )["SubscriptionArn"]
    provisioning.warn(
        f"{props['Protocol']} subscriptions are recorded; nothing is delivered locally", logical
    )
    return arn, {"Arn": arn}
