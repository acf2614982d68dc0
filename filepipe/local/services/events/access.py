"""EventBridge: PutEvents on each entry's bus, rule operations on the rule's ARN."""

from __future__ import annotations

from typing import Any

from filepipe.local.iam.calls import Access, Call, Needs
from filepipe.local.iam.patterns import ContextValue

_NO_RESOURCE = {"ListRules", "ListEventBuses", "TestEventPattern", "ListRuleNamesByTarget"}


def bus_arn(call: Call, bus: Any) -> str:
    name = str(bus or "default")
    return name if name.startswith("arn:") else call.arn("events", f"event-bus/{name}")


def rule_arn(call: Call, rule: str, bus: Any) -> str:
    if rule.startswith("arn:"):
        return rule
    name = str(bus or "default")
    if name.startswith("arn:"):
        name = name.rsplit("/", 1)[-1]
    return call.arn("events", f"rule/{rule}" if name == "default" else f"rule/{name}/{rule}")


def needs(call: Call) -> Needs:
    params, operation = call.params, call.operation
    if operation == "PutEvents":
        accesses = []
        for entry in params.get("Entries", []):
            context: dict[str, ContextValue] = {
                "events:source": str(entry.get("Source", "")),
                "events:detail-type": str(entry.get("DetailType", "")),
            }
            accesses.append(Access("events:PutEvents", bus_arn(call, entry.get("EventBusName")), context))
        return Needs(tuple(accesses))
    if operation in _NO_RESOURCE:
        return Needs((Access(f"events:{operation}", "*"),))
    # Rule operations name the rule by Rule, or by Name for the operations on one rule itself.
    rule = params.get("Rule") or (params.get("Name") if operation.endswith("Rule") else None)
    if isinstance(rule, str) and rule:
        return Needs((Access(f"events:{operation}", rule_arn(call, rule, params.get("EventBusName"))),))
    if operation.endswith("EventBus") and params.get("Name"):
        return Needs((Access(f"events:{operation}", bus_arn(call, params["Name"])),))
    return Needs((Access(f"events:{operation}", str(params.get("ResourceARN") or "*")),))
