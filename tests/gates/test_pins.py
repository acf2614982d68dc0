"""The functions' packages are pinned in one place, and the dev venv runs exactly those versions."""

from __future__ import annotations

import tomllib
from importlib.metadata import requires, version

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from gates import GATES_DIR, ROOT
from gates.lambda_build import FUNCTION_REQUIREMENTS, exact_pins, requirement_lines

# The environment of the Lambda runtime the functions run on (python3.12, arm64, Amazon Linux).
LAMBDA_MARKERS = {
    "python_version": "3.12",
    "python_full_version": "3.12.0",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "aarch64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "extra": "",
}


def function_pins() -> dict[str, str]:
    return exact_pins(FUNCTION_REQUIREMENTS)


def specifiers(requirements: list[str]) -> dict[str, str]:
    """Each requirement's canonical name with its version specifier."""
    return {canonicalize_name(r.name): str(r.specifier) for r in map(Requirement, requirements)}


def test_function_requirements_are_exact_pins() -> None:
    pins = function_pins()

    assert pins
    assert "boto3" not in pins, "the Lambda runtime provides boto3"
    assert "botocore" not in pins, "the Lambda runtime provides botocore"


def test_the_dev_venv_runs_the_pinned_versions() -> None:
    installed = {name: version(name) for name in function_pins()}

    assert installed == function_pins()


def test_the_pins_include_everything_the_pinned_packages_need_on_lambda() -> None:
    pins = function_pins()
    unmet = []
    for name, pinned in pins.items():
        for line in requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker and not requirement.marker.evaluate(LAMBDA_MARKERS):
                continue
            needed = canonicalize_name(requirement.name)
            if needed not in pins or not requirement.specifier.contains(pins[needed], prereleases=True):
                unmet.append(f"{name}=={pinned} needs {line}")

    assert unmet == []


def test_the_project_takes_its_dependencies_from_the_requirement_files() -> None:
    declared = [line for line in requires("filepipe") or [] if "extra ==" not in line]
    local = requirement_lines(ROOT / "filepipe" / "requirements.txt")

    assert specifiers(declared) == {
        **{name: f"=={pinned}" for name, pinned in function_pins().items()},
        **specifiers(local),
    }


def test_the_build_gate_uses_the_sam_cli_that_deploys() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deploy = specifiers(project["optional-dependencies"]["deploy"])
    locked = specifiers(requirement_lines(GATES_DIR / "requirements" / "sam.txt"))

    assert locked["aws-sam-cli"] == deploy["aws-sam-cli"]
