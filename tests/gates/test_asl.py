"""The ASL gate: every state machine definition, substituted as Step Functions would, passes asl-validator."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from filepipe.template import Template
from gates.asl import substituted_definitions, validate


@pytest.fixture(scope="module")
def definitions(template: Template) -> dict[str, str]:
    return substituted_definitions(template)


def _states(definition: dict[str, Any]) -> list[dict[str, Any]]:
    """Every state, those inside Parallel branches and Map processors included."""
    found = []
    for state in definition["States"].values():
        found.append(state)
        for branch in state.get("Branches", []):
            found += _states(branch)
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                found += _states(state[key])
    return found


def test_every_state_machine_passes_the_asl_validator(
    template: Template, definitions: dict[str, str], tmp_path: Path
) -> None:
    state_machines = template.source["Resources"].items()

    assert set(definitions) == {n for n, r in state_machines if r["Type"] == "AWS::Serverless::StateMachine"}
    validation = validate(definitions, tmp_path)
    assert validation.passed, validation.output


# The scan state of the scanner a stack does not use names a function of this name, never deployed.
UNUSED_SCANNER_FUNCTION = {
    "GuardDuty": "arn:aws:lambda:us-east-1:123456789012:function:filepipe-no-clamav",
    "ClamAV": "arn:aws:lambda:us-east-1:123456789012:function:filepipe-no-guardduty",
}


@pytest.mark.parametrize("scanner", sorted(UNUSED_SCANNER_FUNCTION))
def test_substitutions_are_the_arns_a_stack_would_have(template: Template, scanner: str) -> None:
    placeholders = []
    for text in substituted_definitions(template, {"Scanner": scanner}).values():
        assert "${" not in text
        functions = [
            state["Parameters"]["FunctionName"]
            for state in _states(json.loads(text))
            if state.get("Resource", "").startswith("arn:aws:states:::lambda:invoke")
        ]
        assert functions
        for arn in functions:
            if arn == UNUSED_SCANNER_FUNCTION[scanner]:
                placeholders.append(arn)
                continue
            assert re.fullmatch(
                r"arn:aws:lambda:us-east-1:123456789012:function:filepipe-\w+-[0-9A-F]{12}", arn
            )
    assert placeholders, f"no state names {UNUSED_SCANNER_FUNCTION[scanner]}"


def test_a_misspelled_state_type_is_refused(definitions: dict[str, str], tmp_path: Path) -> None:
    name, text = next(iter(definitions.items()))
    definition = json.loads(text)
    task = next(state for state in _states(definition) if state["Type"] == "Task")
    task["Type"] = "Tsak"

    validation = validate({name: definition}, tmp_path)

    assert not validation.passed
    assert "Type is invalid" in validation.output
