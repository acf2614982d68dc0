"""Who EventBridge and Scheduler deliver as: the target's role, or the service itself.

A target with a RoleArn (a Step Functions target, every schedule) is delivered by a session of that role,
which the role's trust policy must let the service assume. A target without one (an SQS queue, a Lambda
function) is delivered by the service principal, ``events.amazonaws.com``, with the rule as aws:SourceArn:
the queue's or the function's own policy must let it in. Refusals are not retried; the event goes to the
target's dead-letter queue (delivered as the same principal) or is dropped, as EventBridge does.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from filepipe.local.enforcement.enforcer import Enforcer, Refused
from filepipe.local.enforcement.sessions import assume_refusal
from filepipe.local.iam.acting import acting_as
from filepipe.local.iam.principals import Principal, service
from filepipe.local.services.awslambda.access import invoke_access, invoke_call
from filepipe.local.services.events.delivery import RuleTarget, TargetError


class Deliveries:
    """Enters each delivery as the principal AWS would deliver it as."""

    def __init__(self, enforcer: Enforcer) -> None:
        self._enforcer = enforcer
        self._sessions: dict[str, str] = {}

    def principal(self, delivery: RuleTarget) -> Principal:
        enforcer = self._enforcer
        scheduler = delivery.rule_arn.startswith("arn:aws:scheduler:")
        name = "scheduler.amazonaws.com" if scheduler else "events.amazonaws.com"
        itself = service(name, enforcer.account, delivery.rule_arn)
        role_arn = delivery.target.get("RoleArn")
        if not role_arn:
            return itself
        refusal = assume_refusal(enforcer, str(role_arn), name, delivery.rule_arn)
        if refusal is not None:
            raise TargetError("AccessDeniedException", refusal, retryable=False)
        role_arn = str(role_arn)
        session = self._sessions.setdefault(role_arn, uuid.uuid4().hex)
        return enforcer.identities.session(role_arn, session)

    @contextmanager
    def acting(self, delivery: RuleTarget) -> Iterator[None]:
        """Deliver (and dead-letter) as the delivery's principal; a Lambda target is authorised here, as
        the runtime invokes it directly rather than through a request."""
        principal = self.principal(delivery)
        if delivery.service == "lambda":
            region = delivery.arn.split(":")[3] or self._enforcer.region
            call = invoke_call(self._enforcer.account, region)
            try:
                self._enforcer.require(
                    principal, call, invoke_access(region, self._enforcer.account, delivery.arn)
                )
            except Refused as refused:
                raise TargetError("AccessDeniedException", refused.text, retryable=False) from None
        with acting_as(principal):
            yield
