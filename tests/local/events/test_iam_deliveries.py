"""IAM where services act for the stack: API Gateway's and Scheduler's invocations, Lambda assuming roles.

The template's transformed copy loses a resource or a grant (a Lambda permission of one route, the
schedule role's policy, Lambda in a role's trust policy) and is provisioned into moto as `filepipe local`
provisions it; the runtime's gateway, delivery and start-up code then meet the refusal AWS would give.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.core.config import default_user_config
from werkzeug.test import Client

from filepipe.local.enforcement.deliveries import Deliveries
from filepipe.local.enforcement.enforcer import Enforcer
from filepipe.local.enforcement.gateway import authorized
from filepipe.local.enforcement.sessions import FunctionCredentials, QueuePollerSessions
from filepipe.local.moto_patches import install
from filepipe.local.provision.provisioner import provision
from filepipe.local.services.apigateway.http_api import HttpApiFront
from filepipe.local.services.awslambda.invoke import InvokeResult
from filepipe.local.services.events.delivery import EventDelivery, RuleTarget, TargetError
from filepipe.local.services.iam.patches import load_only_managed_policies
from filepipe.local.stack.model import Stack
from filepipe.template import PSEUDO_ACCOUNT_ID, Template
from tests.stack import REGION


@pytest.fixture
def provisioned(template: Template, make_stack: Any) -> Any:
    """Provision a (changed) copy of the transformed template, as `filepipe local` does with IAM on."""

    def build(change: Any = None) -> Stack:
        changed = copy.deepcopy(template)
        if change is not None:
            change(changed.resources)
        return provision(
            lambda service: boto3.client(service, region_name=REGION),
            changed,
            "iam-deliveries",
            region=REGION,
            # ClamAV mode: its definitions update is the template's schedule.
            parameters={"Scanner": "ClamAV"},
            iam_enforced=True,
        )

    return build


def _front(stack: Stack, invoked: list[str]) -> Client:
    def invoke(function_arn: str, payload: bytes) -> InvokeResult:
        invoked.append(function_arn)
        return InvokeResult(json.dumps({"statusCode": 200, "body": "{}"}).encode(), None)

    enforcer = Enforcer(PSEUDO_ACCOUNT_ID, REGION)
    api = stack.http_apis["HttpApi"]
    front = HttpApiFront(
        api,
        authorized(invoke, enforcer, REGION),
        account=PSEUDO_ACCOUNT_ID,
        region=REGION,
        aws_endpoint="http://127.0.0.1:1",
    )
    return Client(front)


def _credentials() -> FunctionCredentials:
    def role_of(spec: Any) -> str:
        configuration = boto3.client("lambda", region_name=REGION).get_function_configuration(
            FunctionName=spec.name
        )
        return str(configuration["Role"])

    return FunctionCredentials(Enforcer(PSEUDO_ACCOUNT_ID, REGION), role_of)


def _deliver(delivery: EventDelivery, target: RuleTarget) -> None:
    try:
        delivery.submit(target, {})
        assert delivery.wait_idle(10)
    finally:
        delivery.stop()


def _schedule_delivery(stack: Stack) -> tuple[list[str], list[Any], EventDelivery, RuleTarget]:
    [schedule] = stack.schedules.values()
    invoked: list[str] = []
    dead: list[Any] = []
    delivery = EventDelivery(
        {"lambda": lambda target, payload: invoked.append(str(target["Arn"]))},
        lambda *letter: dead.append(letter),
        acting=Deliveries(Enforcer(PSEUDO_ACCOUNT_ID, REGION)).acting,
    )
    return invoked, dead, delivery, RuleTarget(schedule.name, schedule.arn, schedule.target)


def test_with_the_template_s_grants_api_gateway_and_the_schedule_reach_their_functions(
    provisioned: Any,
) -> None:
    stack = provisioned()
    invoked: list[str] = []
    assert _front(stack, invoked).get("/shares/some-token").status_code == 200
    assert len(invoked) == 1
    scheduled, _, delivery, target = _schedule_delivery(stack)
    _deliver(delivery, target)
    assert scheduled == [target.arn]
    _credentials().check(stack.functions)  # Lambda may assume every function's role


def test_a_missing_permission_or_grant_refuses_as_aws_does(provisioned: Any) -> None:
    def mistakes(resources: dict[str, Any]) -> None:
        # The public share route's Lambda permission is gone; the schedule's role lost its policy; the API
        # function's role trusts EC2 instead of Lambda.
        del resources["ShareApiFunctionGetSharePermission"]
        resources["DefinitionsUpdateFunctionEvery3HoursRole"]["Properties"]["Policies"] = []
        trust = resources["ApiFunctionRole"]["Properties"]["AssumeRolePolicyDocument"]
        trust["Statement"][0]["Principal"] = {"Service": ["ec2.amazonaws.com"]}

    stack = provisioned(mistakes)
    invoked: list[str] = []
    answer = _front(stack, invoked).get("/shares/some-token")
    assert (answer.status_code, answer.get_json()) == (500, {"message": "Internal Server Error"})
    assert invoked == []  # API Gateway never reached the function

    scheduled, dead, delivery, target = _schedule_delivery(stack)
    deliveries = Deliveries(Enforcer(PSEUDO_ACCOUNT_ID, REGION))
    with pytest.raises(TargetError) as refused, deliveries.acting(target):
        pass
    assert refused.value.code == "AccessDeniedException"
    assert not refused.value.retryable
    assert "is not authorized to perform: lambda:InvokeFunction on resource: " in refused.value.message
    assert "-DefinitionsUpdateFunctionEvery3HoursRole-" in refused.value.message
    _deliver(delivery, target)
    assert scheduled == []
    assert dead == []  # the schedule has no dead-letter queue: the invocation is dropped

    # A schedule given a function's role by mistake: Scheduler may not assume it.
    function_role = boto3.client("lambda", region_name=REGION).get_function_configuration(
        FunctionName=stack.functions["DefinitionsUpdateFunction"].name
    )["Role"]
    wrong_role = RuleTarget(target.rule_name, target.rule_arn, {**target.target, "RoleArn": function_role})
    with pytest.raises(TargetError) as refused, deliveries.acting(wrong_role):
        pass
    assert "scheduler.amazonaws.com is not authorized to perform: sts:AssumeRole" in refused.value.message

    # Lambda may not assume the API's role: the deployment stops there, as CreateFunction refuses it.
    with pytest.raises(
        ValueError, match=r"^ApiFunction: Lambda refuses it \(InvalidParameterValueException\): "
    ):
        _credentials().check(stack.functions)


SQS_POLLER_POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole"


@pytest.fixture
def sqs_poller_policy(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The AWS managed policy SAM attaches for an SQS event, loaded into moto as `filepipe local` loads it."""
    monkeypatch.setitem(default_user_config, "iam", {"load_aws_managed_policies": True})
    uninstall = install(load_only_managed_policies, [SQS_POLLER_POLICY])
    yield
    uninstall()


def _queue_pollers() -> QueuePollerSessions:
    return QueuePollerSessions(Enforcer(PSEUDO_ACCOUNT_ID, REGION), _credentials()._role_of)


@pytest.mark.usefixtures("sqs_poller_policy")
def test_lambda_s_queue_poller_reads_and_deletes_with_the_function_s_role(provisioned: Any) -> None:
    stack = provisioned()
    _queue_pollers().check(stack.event_source_mappings, stack.function_by_name)


@pytest.mark.usefixtures("sqs_poller_policy")
def test_a_role_without_the_poller_s_grants_stops_the_deployment(provisioned: Any) -> None:
    def hand_written_role(resources: dict[str, Any]) -> None:
        # The SQS event's managed policy is what grants Lambda's poller the queue: a role without it.
        properties = resources["StartFunctionRole"]["Properties"]
        properties["ManagedPolicyArns"] = [
            arn for arn in properties["ManagedPolicyArns"] if "AWSLambdaSQSQueueExecutionRole" not in str(arn)
        ]

    stack = provisioned(hand_written_role)
    expected = (
        "StartFunctionUploads: Lambda refuses it (InvalidParameterValueException): The provided execution "
        "role does not have permissions to call ReceiveMessage on SQS"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        _queue_pollers().check(stack.event_source_mappings, stack.function_by_name)
