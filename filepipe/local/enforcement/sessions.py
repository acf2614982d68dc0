"""The sessions services open with the template's roles: functions, the state machine, schedules, rules.

Lambda gives each function credentials of its execution role (the session is named after the function);
Step Functions invokes tasks as the state machine's role; Scheduler and EventBridge targets with a
RoleArn act as that role; a target without one (an SQS queue, a Lambda function) is delivered to by the
service itself, which the target's own policy must let in.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import ClientError

from filepipe.local.enforcement.enforcer import Enforcer, Refused
from filepipe.local.iam import resource_policies
from filepipe.local.iam.acting import acting_as
from filepipe.local.iam.calls import Access, Call
from filepipe.local.iam.identities import Credentials
from filepipe.local.iam.principals import service
from filepipe.local.services.awslambda.access import invoke_access, invoke_call
from filepipe.local.services.sqs import access as sqs_access

RoleOf = Callable[[Any], str]


def assume_refusal(
    enforcer: Enforcer, role_arn: str, service_name: str, source_arn: str | None = None
) -> str | None:
    """None when ``service_name`` (acting for ``source_arn``) may assume the role per its trust policy."""
    account = enforcer.account
    access = Access(
        "sts:AssumeRole",
        role_arn,
        policy=lambda: resource_policies.role_trust(account, role_arn),
        policy_required=True,
    )
    call = Call("sts", "AssumeRole", {"RoleArn": role_arn}, account, enforcer.region, protocol="query")
    try:
        enforcer.require(service(service_name, account, source_arn), call, access)
    except Refused as refused:
        return refused.text
    return None


class FunctionCredentials:
    """Credentials of each function's execution role, given to each new instance of the function.

    A session lasts 12 hours and an instance keeps its credentials for life, as Lambda's do; a session is
    shared by the instances started within its first hour, so each starts with 11 hours or more left.
    """

    REISSUE_AFTER_SECONDS = 3600.0

    def __init__(self, enforcer: Enforcer, role_of: RoleOf) -> None:
        self._enforcer = enforcer
        self._role_of = role_of
        self._issued: dict[str, tuple[float, Credentials]] = {}
        self._lock = threading.Lock()

    def check(self, functions: Mapping[str, Any]) -> None:
        """Stop the deployment where Lambda would: a function whose role Lambda may not assume.

        CreateFunction answers InvalidParameterValueException "The role defined for the function cannot
        be assumed by Lambda." (CloudFormation then rolls back); moto only checks that the role exists.
        """
        for logical, spec in functions.items():
            if assume_refusal(self._enforcer, self._role_of(spec), "lambda.amazonaws.com") is not None:
                raise ValueError(
                    f"{logical}: Lambda refuses it (InvalidParameterValueException): The role defined for "
                    "the function cannot be assumed by Lambda."
                )

    def __call__(self, spec: Any) -> tuple[str, str, str]:
        now = time.monotonic()
        with self._lock:
            issued_at, issued = self._issued.get(spec.logical_id, (0.0, None))
        if issued is None or now - issued_at > self.REISSUE_AFTER_SECONDS:
            issued = self._enforcer.identities.issue(self._role_of(spec), spec.name)
            with self._lock:
                self._issued[spec.logical_id] = (now, issued)
        return issued.access_key_id, issued.secret_access_key, issued.session_token


class StateMachineInvokes:
    """lambda:InvokeFunction of a task, decided for the state machine's role before the runner runs it.

    A refusal is the ClientError the SDK raises for Lambda's 403, so moto's interpreter fails the task
    with ``Lambda.AccessDeniedException`` and Lambda's message, as Step Functions does.
    """

    def __init__(self, enforcer: Enforcer) -> None:
        self._enforcer = enforcer
        self._sessions: dict[str, str] = {}

    def __call__(self, role_arn: str | None, function: str, region: str) -> None:
        if not role_arn:
            return
        session = self._sessions.setdefault(role_arn, uuid.uuid4().hex)
        principal = self._enforcer.identities.session(role_arn, session)
        access = invoke_access(region, self._enforcer.account, function)
        try:
            self._enforcer.require(principal, invoke_call(self._enforcer.account, region), access)
        except Refused as refused:
            raise ClientError(
                {
                    "Error": {"Code": "AccessDeniedException", "Message": refused.text},
                    "ResponseMetadata": {"HTTPStatusCode": 403, "RequestId": str(uuid.uuid4())},
                },
                "Invoke",
            ) from None

    def credentials(self, role_arn: str) -> Credentials:
        """Credentials of the state machine's role, for the interpreter's SDK tasks."""
        return self._enforcer.identities.issue(
            role_arn, self._sessions.setdefault(role_arn, uuid.uuid4().hex)
        )


class QueuePollerSessions:
    """Lambda's SQS pollers act as the mapped function's execution role, as on AWS.

    CreateEventSourceMapping checks that role first: without ReceiveMessage, DeleteMessage and
    GetQueueAttributes on the queue it answers InvalidParameterValueException (CloudFormation rolls back).
    """

    POLLER_ACTIONS = ("ReceiveMessage", "DeleteMessage", "GetQueueAttributes")

    def __init__(self, enforcer: Enforcer, role_of: RoleOf) -> None:
        self._enforcer = enforcer
        self._role_of = role_of

    def _principal(self, function: Any) -> Any:
        return self._enforcer.identities.session(self._role_of(function), function.name)

    def check(self, mappings: Mapping[str, Any], function_of: Callable[[str], Any]) -> None:
        """Stop the deployment where CreateEventSourceMapping would, naming the first action refused."""
        for logical, mapping in mappings.items():
            principal = self._principal(function_of(mapping.function_name))
            region = mapping.queue_arn.split(":")[3]
            for operation in self.POLLER_ACTIONS:
                queue = {"QueueName": mapping.queue_arn.rsplit(":", 1)[-1]}
                call = Call("sqs", operation, queue, self._enforcer.account, region)
                try:
                    for access in sqs_access.needs(call).accesses:
                        self._enforcer.require(principal, call, access)
                except Refused:
                    raise ValueError(
                        f"{logical}: Lambda refuses it (InvalidParameterValueException): The provided "
                        f"execution role does not have permissions to call {operation} on SQS"
                    ) from None

    @contextmanager
    def acting(self, function: Any) -> Iterator[None]:
        """The poller's requests of this thread are the function role's."""
        with acting_as(self._principal(function)):
            yield
