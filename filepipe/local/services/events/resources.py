"""EventBridge resources: event buses and rules, a scheduled rule's targets kept for the local clock."""

from __future__ import annotations

import json
from typing import Any

from filepipe.local.stack.context import Created, Properties, Provisioning, ServiceHandlers
from filepipe.local.stack.model import ScheduleSpec
from filepipe.local.stack.tags import tag_list

HANDLERS = ServiceHandlers()


@HANDLERS.register("AWS::Events::EventBus")
def create_event_bus(provisioning: Provisioning, logical: str, props: Properties) -> Created:
    kwargs: dict[str, Any] = {"Name": props["Name"]}
    if "Description" in props:
        kwargs["Description"] = props["Description"]
    if "Tags" in props:
        kwargs["Tags"] = tag_list(props["Tags"])
    response = provisioning.client("events").create_event_bus(**kwargs)
    return props["Name"], {"Arn": response["EventBusArn"], "Name": props["Name"]}


@HANDLERS.register("AWS::Events::Rule")
def create_rule(provisioning: Provisioning, logical: str, props: Properties) -> Created:
    events = provisioning.client("events")
    name = props.get("Name") or provisioning.name(logical, max_length=64)
    bus = props.get("EventBusName", "default")
    kwargs: dict[str, Any] = {"Name": name, "EventBusName": bus, "State": props.get("State", "ENABLED")}
    if "EventPattern" in props:
        kwargs["EventPattern"] = json.dumps(props["EventPattern"])
    if "ScheduleExpression" in props:
        kwargs["ScheduleExpression"] = props["ScheduleExpression"]
    for key in ("Description", "RoleArn"):
        if key in props:
            kwargs[key] = props[key]
    arn = events.put_rule(**kwargs)["RuleArn"]
    targets = [dict(target) for target in props.get("Targets", [])]
    if targets:
        events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
    if "ScheduleExpression" in props:
        for target in targets:
            provisioning.add_schedule(
                f"{logical}/{target['Id']}",
                ScheduleSpec(
                    logical_id=logical,
                    name=name,
                    arn=arn,
                    expression=props["ScheduleExpression"],
                    target=target,
                    enabled=kwargs["State"] == "ENABLED",
                    scheduled_rule=True,
                ),
            )
    return name, {"Arn": arn}
