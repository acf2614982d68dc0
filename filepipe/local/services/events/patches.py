"""EventBridge's patches to moto: rules hand matched events to the runtime's delivery to targets.

moto cannot deliver to Step Functions or Lambda, nor retry, nor use DLQs; the runtime's delivery
(filepipe.local.services.events.delivery) does, for every target of a rule an event matches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from filepipe.local.moto_patches import Uninstall, moto_patch, replace
from filepipe.local.services.events.delivery import RuleTarget, normalize_event

RuleSink = Callable[[RuleTarget, dict[str, Any]], None]


@moto_patch("moto.events.models.Rule.send_to_targets")
def deliver_rule_targets(sink: RuleSink) -> Uninstall:
    """Replaces moto's ``Rule.send_to_targets``: match, then hand each target to ``sink``.

    Relies on each rule's ``state``, ``event_bus_name``, ``event_pattern.matches_event``, ``name``,
    ``arn`` and ``targets``.
    """
    from moto.events.models import Rule

    def send_to_targets(rule: Any, event: dict[str, Any], transform_input: bool = True) -> None:
        if rule.state != "ENABLED":
            return
        # S3 publishes to the default bus only; moto offers its events to the rules of every bus.
        if event.get("source") == "aws.s3" and rule.event_bus_name != "default":
            return
        if not rule.event_pattern.matches_event(event):
            return
        normalized = normalize_event(event)
        event["id"] = normalized["id"]  # the same event keeps one id across all the rules it matches
        for target in rule.targets:
            sink(RuleTarget(rule.name, rule.arn, dict(target)), normalized)

    return replace(Rule, send_to_targets=send_to_targets)


def put_event(account: str, region: str, event: dict[str, Any]) -> None:
    """Put an AWS service event on the default bus, as the service itself would.

    Relies on ``moto.events.models.events_backends`` and each backend's ``event_buses``, whose rules'
    ``send_to_targets`` it calls.
    """
    from moto.events.models import events_backends

    backend = events_backends[account][region]
    for rule in list(backend.event_buses["default"].rules.values()):
        rule.send_to_targets(event)  # type: ignore[arg-type]
