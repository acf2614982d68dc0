"""IAM for `filepipe local`: the enforcer and the sessions of functions, the state machine and deliveries."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from filepipe.local.enforcement.deliveries import Deliveries
from filepipe.local.enforcement.enforcer import Enforcer, enabled
from filepipe.local.enforcement.gateway import Invoke, authorized
from filepipe.local.enforcement.sessions import FunctionCredentials, QueuePollerSessions, StateMachineInvokes


@dataclass(frozen=True)
class RuntimeIam:
    """What the runtime wires in: the gate of its endpoint and who each service acts as."""

    enforcer: Enforcer
    function_credentials: FunctionCredentials
    state_machine: StateMachineInvokes
    deliveries: Deliveries
    pollers: QueuePollerSessions
    region: str

    def check_roles(
        self, functions: Mapping[str, Any], mappings: Mapping[str, Any], function_of: Callable[[str], Any]
    ) -> None:
        """Refuse the deployment where a service could not assume the role it is given, or where Lambda's
        queue pollers could not read the queue with the function's role."""
        self.function_credentials.check(functions)
        self.pollers.check(mappings, function_of)

    def api_invoke(self, invoke: Invoke) -> Invoke:
        return authorized(invoke, self.enforcer, self.region)


def runtime_iam(account: str, region: str, role_of: Callable[[Any], str]) -> RuntimeIam | None:
    """The runtime's IAM, or None when FILEPIPE_LOCAL_IAM=off (for measuring its cost only)."""
    if not enabled():
        return None
    enforcer = Enforcer(account, region)
    return RuntimeIam(
        enforcer=enforcer,
        function_credentials=FunctionCredentials(enforcer, role_of),
        state_machine=StateMachineInvokes(enforcer),
        deliveries=Deliveries(enforcer),
        pollers=QueuePollerSessions(enforcer, role_of),
        region=region,
    )
