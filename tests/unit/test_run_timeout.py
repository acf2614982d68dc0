"""The workflow's own TimeoutSeconds bounds a run without cutting short one its states still bound."""

from __future__ import annotations

import copy
import functools
import json
from typing import Any

from filepipe.template import ROOT

ASL_PATH = ROOT / "statemachines" / "process_upload.asl.json"
# Room above the slowest path for what no state bounds: transitions, scheduling, Lambda cold starts.
MARGIN = 1.2
# A bound far above the slowest path would hold a stuck run (and its file) for nothing.
AT_MOST = 1.5


def _definition() -> dict[str, Any]:
    return json.loads(ASL_PATH.read_text())


def _task_seconds(state: dict[str, Any]) -> float:
    """Every attempt may run to the state's timeout before a retried error; waits grow as declared.

    Jitter only shortens a wait, so the declared interval is the longest one.
    """
    attempts, waits = 1, 0.0
    for retry in state.get("Retry", []):
        count = retry.get("MaxAttempts", 3)
        attempts += count
        for number in range(count):
            wait = retry.get("IntervalSeconds", 1) * retry.get("BackoffRate", 2.0) ** number
            waits += min(wait, retry.get("MaxDelaySeconds", wait))
    return attempts * state["TimeoutSeconds"] + waits


def slowest_path_seconds(machine: dict[str, Any]) -> float:
    """The longest a run can take when every state uses all its time and retries, over every path
    (each Next, Choice and Catch; a Parallel takes its slowest branch)."""
    states: dict[str, Any] = machine["States"]

    @functools.cache
    def from_state(name: str) -> float:
        state = states[name]
        if state["Type"] == "Task":
            own = _task_seconds(state)
        elif state["Type"] == "Parallel":
            own = max(slowest_path_seconds(branch) for branch in state["Branches"])
        else:
            own = 0.0
        following = [state[key] for key in ("Next", "Default") if key in state]
        following += [choice["Next"] for choice in state.get("Choices", [])]
        following += [catch["Next"] for catch in state.get("Catch", [])]
        return own + max((from_state(name) for name in following), default=0.0)

    return from_state(machine["StartAt"])


def test_the_run_timeout_covers_the_slowest_path_with_room_and_no_more() -> None:
    definition = _definition()
    slowest = slowest_path_seconds(definition)
    assert slowest * MARGIN <= definition["TimeoutSeconds"] <= slowest * AT_MOST, (
        f"slowest path {slowest:.0f} s: TimeoutSeconds belongs in "
        f"[{slowest * MARGIN:.0f}, {slowest * AT_MOST:.0f}] s"
    )


def test_the_slowest_path_grows_with_any_state_on_it() -> None:
    definition = _definition()
    slower = copy.deepcopy(definition)
    slower["States"]["Scan for malware"]["TimeoutSeconds"] += 600
    longer_wait = copy.deepcopy(definition)
    longer_wait["States"]["Notify owner"]["Retry"][-1]["MaxDelaySeconds"] += 600
    in_a_branch = copy.deepcopy(definition)
    in_a_branch["States"]["Make thumbnails and metadata"]["Branches"][1]["States"]["Extract metadata"][
        "TimeoutSeconds"
    ] += 600

    slowest = slowest_path_seconds(definition)
    for changed in (slower, longer_wait, in_a_branch):
        assert slowest_path_seconds(changed) > slowest
