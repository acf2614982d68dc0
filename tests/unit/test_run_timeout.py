"""The workflow's own TimeoutSeconds bounds a run without cutting short one its states still bound."""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import re
from dataclasses import dataclass
from typing import Any

import pytest

from filepipe.template import ROOT, Template, references

ASL_PATH = ROOT / "statemachines" / "process_upload.asl.json"
STATE_MACHINE = "ProcessUploadStateMachine"
# Room above the slowest path for what no state bounds: transitions, scheduling, Lambda cold starts.
MARGIN = 1.2
# A bound far above the slowest path would hold a stuck run (and its file) for nothing.
AT_MOST = 1.5
CALLBACK = ".waitForTaskToken"
# Lambda's own default when neither the function nor Globals set a timeout.
LAMBDA_DEFAULT_TIMEOUT = 3


@dataclass(frozen=True)
class Bounds:
    """What the definition alone does not say: the longest value a TimeoutSecondsPath can read (its
    parameter's MaxValue), and how long each substituted function's invocation may take (its Timeout)."""

    timeout_paths: dict[str, float]
    invocations: dict[str, float]


def _definition() -> dict[str, Any]:
    return json.loads(ASL_PATH.read_text())


def _function_timeout(template: Template, logical_id: str) -> float:
    properties = template.source["Resources"][logical_id].get("Properties", {})
    default = template.source.get("Globals", {}).get("Function", {}).get("Timeout", LAMBDA_DEFAULT_TIMEOUT)
    return float(properties.get("Timeout", default))


def bounds_of(template: Template, definition: dict[str, Any]) -> Bounds:
    resources = template.source["Resources"]
    substitutions = resources[STATE_MACHINE]["Properties"]["DefinitionSubstitutions"]
    invocations = {}
    for name, value in substitutions.items():
        functions = [
            ref
            for ref in references(value)
            if resources.get(ref, {}).get("Type") == "AWS::Serverless::Function"
        ]
        if functions:
            invocations["${" + name + "}"] = max(_function_timeout(template, ref) for ref in functions)
    # A Pass state's Parameters put a substituted parameter at a path a TimeoutSecondsPath reads.
    timeout_paths = {}
    for state in definition["States"].values():
        if state["Type"] != "Pass":
            continue
        for key, expression in state.get("Parameters", {}).items():
            parameter = re.search(r"\$\{(\w+)\}", str(expression))
            substituted = substitutions.get(parameter.group(1)) if parameter else None
            if isinstance(substituted, dict) and "Ref" in substituted:
                spec = template.source["Parameters"][substituted["Ref"]]
                if "MaxValue" in spec:
                    timeout_paths[f"{state['ResultPath']}.{key.removesuffix('.$')}"] = float(spec["MaxValue"])
    return Bounds(timeout_paths, invocations)


def _task_seconds(state: dict[str, Any], bounds: Bounds) -> float:
    """Every attempt may run to the state's timeout before a retried error; waits grow as declared.

    Jitter only shortens a wait, so the declared interval is the longest one. A callback task's retried
    errors (Lambda's, ServiceThrottled) can only come from its invocation, which the function's own timeout
    bounds; only its last attempt waits for the token, up to the state's timeout.
    """
    retried, waits = 0, 0.0
    for retry in state.get("Retry", []):
        count = retry.get("MaxAttempts", 3)
        retried += count
        for number in range(count):
            wait = retry.get("IntervalSeconds", 1) * retry.get("BackoffRate", 2.0) ** number
            waits += min(wait, retry.get("MaxDelaySeconds", wait))
    if "TimeoutSeconds" in state:
        timeout = float(state["TimeoutSeconds"])
    else:
        path = state["TimeoutSecondsPath"]
        assert path in bounds.timeout_paths, f"{path} has no parameter with a MaxValue bounding it"
        timeout = bounds.timeout_paths[path]
    if state["Resource"].endswith(CALLBACK):
        invocation = bounds.invocations[state["Parameters"]["FunctionName"]]
        return retried * min(invocation, timeout) + timeout + waits
    return (retried + 1) * timeout + waits


def slowest_path_seconds(machine: dict[str, Any], bounds: Bounds) -> float:
    """The longest a run can take when every state uses all its time and retries, over every path
    (each Next, Choice and Catch; a Parallel takes its slowest branch)."""
    states: dict[str, Any] = machine["States"]

    @functools.cache
    def from_state(name: str) -> float:
        state = states[name]
        if state["Type"] == "Task":
            own = _task_seconds(state, bounds)
        elif state["Type"] == "Parallel":
            own = max(slowest_path_seconds(branch, bounds) for branch in state["Branches"])
        else:
            own = 0.0
        following = [state[key] for key in ("Next", "Default") if key in state]
        following += [choice["Next"] for choice in state.get("Choices", [])]
        following += [catch["Next"] for catch in state.get("Catch", [])]
        return own + max((from_state(name) for name in following), default=0.0)

    return from_state(machine["StartAt"])


def test_the_run_timeout_covers_the_slowest_path_with_room_and_no_more(template: Template) -> None:
    definition = _definition()
    slowest = slowest_path_seconds(definition, bounds_of(template, definition))
    assert slowest * MARGIN <= definition["TimeoutSeconds"] <= slowest * AT_MOST, (
        f"slowest path {slowest:.0f} s: TimeoutSeconds belongs in "
        f"[{slowest * MARGIN:.0f}, {slowest * AT_MOST:.0f}] s"
    )


def test_the_guardduty_wait_is_bounded_by_its_parameter_and_the_verdict_function(template: Template) -> None:
    definition = _definition()
    bounds = bounds_of(template, definition)
    maximum = template.source["Parameters"]["ScanVerdictTimeoutSeconds"]["MaxValue"]

    assert bounds.timeout_paths == {"$.scanner.verdictTimeoutSeconds": maximum}
    verdict_function = _function_timeout(template, "ScanVerdictFunction")
    assert bounds.invocations["${ScanVerdictFunctionArn}"] == verdict_function
    # In GuardDuty mode the ClamAV branch names a function never deployed: its bound is the scan function's.
    assert bounds.invocations["${ScanFunctionArn}"] == _function_timeout(template, "ScanFunction")


@pytest.mark.parametrize("change", ["scan timeout", "notify wait", "branch timeout", "verdict timeout"])
def test_the_slowest_path_grows_with_any_state_on_it(template: Template, change: str) -> None:
    definition = _definition()
    bounds = bounds_of(template, definition)
    changed, changed_bounds = copy.deepcopy(definition), bounds
    states = changed["States"]
    if change == "scan timeout":
        states["Scan for malware"]["TimeoutSeconds"] += 600
    elif change == "notify wait":
        states["Notify owner"]["Retry"][-1]["MaxDelaySeconds"] += 600
    elif change == "branch timeout":
        states["Make thumbnails and metadata"]["Branches"][1]["States"]["Extract metadata"][
            "TimeoutSeconds"
        ] += 600
    else:
        longer = {path: seconds + 600 for path, seconds in bounds.timeout_paths.items()}
        changed_bounds = dataclasses.replace(bounds, timeout_paths=longer)

    assert slowest_path_seconds(changed, changed_bounds) > slowest_path_seconds(definition, bounds)
