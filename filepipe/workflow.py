"""Static checks of the ProcessUpload definition that neither cfn-lint nor SAM make."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

STATE_TYPES = frozenset({"Task", "Pass", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map"})
SERVICE_ERRORS = frozenset(
    {
        "States.ALL",
        "States.Timeout",
        "States.TaskFailed",
        "States.Permissions",
        "States.HeartbeatTimeout",
        "States.DataLimitExceeded",
        "States.Runtime",
        "States.BranchFailed",
        "States.NoChoiceMatched",
        "States.IntrinsicFailure",
        "States.ResultPathMatchFailure",
        "States.ParameterPathFailure",
        "States.ExceedToleratedFailureThreshold",
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
        "Lambda.ClientExecutionTimeoutException",
        "Lambda.Unknown",
        "Sandbox.Timedout",
    }
)
# Outcomes about the file itself: retrying cannot change them.
NEVER_RETRIED = frozenset({"FileRejected", "FileInfected", "AlreadyProcessed"})
_TERMINAL = frozenset({"Succeed", "Fail", "Choice"})


class DefinitionError(ValueError):
    """The state machine definition breaks a rule; the message names the state."""


def _targets(state: dict[str, Any]) -> list[str]:
    targets = [state[key] for key in ("Next", "Default") if key in state]
    targets += [choice["Next"] for choice in state.get("Choices", [])]
    targets += [catch["Next"] for catch in state.get("Catch", [])]
    return targets


def check_definition(
    definition: dict[str, Any], domain_errors: Collection[str], path: str = "", caught_outside: bool = False
) -> None:
    """Raise DefinitionError for the first broken rule in this scope or a nested branch.

    ``domain_errors`` are the error class names the functions raise (functions/common/errors.py).
    """

    def known(error: str) -> bool:
        return error in SERVICE_ERRORS or error in domain_errors

    states: dict[str, Any] = definition.get("States", {})
    start = definition.get("StartAt")
    if start not in states:
        raise DefinitionError(f"{path}StartAt {start!r} does not exist")
    for name, state in states.items():
        where = f"{path}{name!r}"
        state_type = state.get("Type")
        if state_type not in STATE_TYPES:
            raise DefinitionError(f"{where}: unknown state type {state_type!r}")
        for target in _targets(state):
            if target not in states:
                raise DefinitionError(f"{where}: next state {target!r} does not exist")
        if state_type not in _TERMINAL and "Next" not in state and not state.get("End"):
            raise DefinitionError(f"{where}: neither Next nor End")
        if state_type == "Task":
            # TimeoutSecondsPath: a limit the run's input gives (from a template parameter, say).
            if not isinstance(state.get("TimeoutSeconds"), int) and not str(
                state.get("TimeoutSecondsPath", "")
            ).startswith("$"):
                raise DefinitionError(f"{where}: a Task needs TimeoutSeconds or TimeoutSecondsPath")
            if not state.get("Catch") and not caught_outside:
                raise DefinitionError(f"{where}: a Task without a Catch would end the run without a record")
        for retry in state.get("Retry", []):
            for error in retry["ErrorEquals"]:
                if not known(error):
                    raise DefinitionError(f"{where}: Retry on unknown error {error!r}")
                if error in NEVER_RETRIED:
                    raise DefinitionError(f"{where}: {error} is an outcome and is never retried")
        for catch in state.get("Catch", []):
            for error in catch["ErrorEquals"]:
                if not known(error):
                    raise DefinitionError(f"{where}: Catch on unknown error {error!r}")
        for index, branch in enumerate(state.get("Branches", [])):
            check_definition(branch, domain_errors, f"{path}{name}[{index}] ", bool(state.get("Catch")))
    reachable = _reachable(states, str(start))
    unreachable = sorted(set(states) - reachable)
    if unreachable:
        raise DefinitionError(f"{path}unreachable states: {', '.join(unreachable)}")


def _reachable(states: dict[str, Any], start: str) -> set[str]:
    seen: set[str] = set()
    pending = [start]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        pending.extend(_targets(states[name]))
    return seen
