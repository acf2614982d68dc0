"""EventBridge Scheduler resources: schedules, kept for the local clock that runs them."""

from __future__ import annotations

from typing import Any

from filepipe.local.stack.context import Created, Properties, Provisioning, ServiceHandlers
from filepipe.local.stack.model import ScheduleSpec

HANDLERS = ServiceHandlers()


@HANDLERS.register("AWS::Scheduler::Schedule")
def create_schedule(provisioning: Provisioning, logical: str, props: Properties) -> Created:
    name = props.get("Name") or provisioning.name(logical, max_length=64)
    target = dict(props["Target"])
    kwargs: dict[str, Any] = {
        "Name": name,
        "ScheduleExpression": props["ScheduleExpression"],
        "FlexibleTimeWindow": props.get("FlexibleTimeWindow", {"Mode": "OFF"}),
        "Target": target,
        "State": props.get("State", "ENABLED"),
    }
    for key in ("GroupName", "Description", "ScheduleExpressionTimezone", "StartDate", "EndDate"):
        if key in props:
            kwargs[key] = props[key]
    if "RetryPolicy" in target:
        target["RetryPolicy"] = {k: int(v) for k, v in target["RetryPolicy"].items()}
    arn = provisioning.client("scheduler").create_schedule(**kwargs)["ScheduleArn"]
    provisioning.add_schedule(
        logical,
        ScheduleSpec(
            logical_id=logical,
            name=name,
            arn=arn,
            expression=str(props["ScheduleExpression"]),
            target={"Id": name, "Input": "{}", **target},
            enabled=kwargs["State"] == "ENABLED",
            scheduled_rule=False,
            timezone=props.get("ScheduleExpressionTimezone"),
            start_date=props.get("StartDate"),
            end_date=props.get("EndDate"),
        ),
    )
    return name, {"Arn": arn}
