"""The Lambda build gate: `sam build` of every function, then checks of the package Lambda would run.

What the checks cover, and what they do not:
- The arm64 artifact (what `make deploy` uploads) is inspected, not run: every ELF file in it is built
  for the function's architecture, every wheel's tag installs on the runtime (CPython 3.12 on Amazon
  Linux 2023, glibc 2.34, that architecture), and it holds exactly the packages functions/requirements.txt
  pins: no boto3 (the runtime provides it), nothing from the dev venv.
- Importing: this machine is x86_64 and cannot load the artifact's aarch64 native code. So each handler
  is imported by the runtime's Python version (pyenv's 3.12) in isolated mode (-I -S -B: no site-packages,
  no environment variables, not even AWS_REGION, no bytecode left in the artifact) with exactly three
  folders on its path: the mirror (the same pinned packages built for x86_64, which a test holds to the
  artifact's names and versions), the function's artifact (the handler's code is loaded from there), and
  boto3 as the runtime provides it. That proves the packaged code imports with only what it declares;
  arm64 code itself is not run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import distributions
from pathlib import Path

import pytest
from packaging.tags import Tag, compatible_tags, cpython_tags, parse_tag
from packaging.utils import canonicalize_name

from filepipe.template import Template
from gates import GateError, run
from gates.lambda_build import FunctionBuild, LambdaBuild, build, exact_pins, python_for

# ELF e_machine values (EM_X86_64, EM_AARCH64) by Lambda's names for the architectures.
ELF_MACHINES = {62: "x86_64", 183: "arm64"}
WHEEL_ARCHITECTURES = {"x86_64": "x86_64", "arm64": "aarch64"}
# Amazon Linux 2023, the OS of the python3.12 runtime, has glibc 2.34: no wheel may need a newer one.
LAMBDA_GLIBC_MINOR = 34
PROBE = """
import importlib, json, sys
sys.path[:0] = json.loads(sys.argv[1])
module_name, _, attribute = sys.argv[2].rpartition(".")
module = importlib.import_module(module_name)
print(json.dumps({"file": module.__file__, "callable": callable(getattr(module, attribute))}))
"""


@pytest.fixture(scope="module")
def lambda_build() -> LambdaBuild:
    return build()


def files(folder: Path) -> Iterator[Path]:
    return (path for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


def elf_architecture(path: Path) -> str | None:
    """The architecture an ELF file is built for, None for any other file."""
    with path.open("rb") as opened:
        header = opened.read(20)
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    machine = int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")
    return ELF_MACHINES.get(machine, f"ELF machine {machine}")


def runtime_tags(runtime: str, architecture: str) -> set[Tag]:
    """The wheel tags pip would install on the Lambda runtime of this Python version and architecture."""
    major, minor = (int(part) for part in runtime.removeprefix("python").split("."))
    machine = WHEEL_ARCHITECTURES[architecture]
    platforms = [f"manylinux_2_{glibc}_{machine}" for glibc in range(LAMBDA_GLIBC_MINOR, 16, -1)]
    platforms += [f"manylinux2014_{machine}"]
    return set(cpython_tags((major, minor), platforms=platforms)) | set(
        compatible_tags((major, minor), f"cp{major}{minor}", platforms)
    )


def installed(folder: Path) -> dict[str, str]:
    """The distributions installed in a folder, by canonical name, with their versions."""
    return {canonicalize_name(d.metadata["Name"]): d.version for d in distributions(path=[str(folder)])}


def import_handler(function: FunctionBuild, lambda_build: LambdaBuild) -> dict[str, object]:
    """Import the handler the way the module docstring describes; raises with the output on failure."""
    path = [str(function.mirror), str(function.artifact), str(lambda_build.runtime_sdk)]
    result = run(
        [str(lambda_build.python), "-I", "-S", "-B", "-c", PROBE, json.dumps(path), function.handler],
        timeout=120,
        env={},
    )
    if result.returncode != 0:
        raise AssertionError(f"{function.logical_id} ({function.handler}) does not import:\n{result.stderr}")
    outcome: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return outcome


def test_every_function_is_built(lambda_build: LambdaBuild, template: Template) -> None:
    resources = template.source["Resources"]

    assert set(lambda_build.functions) == {
        n for n, r in resources.items() if r["Type"] == "AWS::Serverless::Function"
    }
    for function in lambda_build.functions.values():
        module = function.handler.rpartition(".")[0]
        assert (function.artifact / (module.replace(".", "/") + ".py")).is_file(), function.logical_id
    assert all(reason for reason in lambda_build.left_out.values())


def test_native_code_is_built_for_the_function_architecture(lambda_build: LambdaBuild) -> None:
    wrong = {}
    for function in lambda_build.functions.values():
        for path in files(function.artifact):
            architecture = elf_architecture(path)
            if architecture not in (None, function.architecture):
                wrong[str(path.relative_to(function.artifact.parent))] = architecture

    assert wrong == {}


def test_every_wheel_installs_on_the_lambda_runtime(lambda_build: LambdaBuild) -> None:
    wrong = {}
    for function in lambda_build.functions.values():
        supported = runtime_tags(function.runtime, function.architecture)
        for wheel in function.artifact.glob("*.dist-info/WHEEL"):
            tags = {
                tag
                for line in wheel.read_text().splitlines()
                if line.startswith("Tag:")
                for tag in parse_tag(line.removeprefix("Tag:").strip())
            }
            if not tags & supported:
                wrong[f"{function.logical_id}/{wheel.parent.name}"] = sorted(map(str, tags))

    assert wrong == {}


def test_the_package_holds_exactly_the_pinned_distributions(lambda_build: LambdaBuild) -> None:
    pins = exact_pins()
    for function in lambda_build.functions.values():
        assert installed(function.artifact) == pins, function.logical_id
        assert installed(function.mirror) == pins, f"mirror of {function.logical_id}"


def test_every_handler_imports_under_the_runtime_python(lambda_build: LambdaBuild) -> None:
    functions = list(lambda_build.functions.values())

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(lambda f: import_handler(f, lambda_build), functions))

    for function, outcome in zip(functions, outcomes, strict=True):
        assert outcome["callable"] is True, function.logical_id
        assert Path(str(outcome["file"])).is_relative_to(function.artifact), function.logical_id


def test_the_import_check_sees_a_package_the_artifact_lacks(
    lambda_build: LambdaBuild, tmp_path: Path
) -> None:
    # pyyaml is in the dev venv but not in functions/requirements.txt.
    (tmp_path / "undeclared.py").write_text(
        "import yaml\n\ndef lambda_handler(event, context):\n    return event\n"
    )
    function = next(iter(lambda_build.functions.values()))
    probe = FunctionBuild(
        logical_id="Undeclared",
        handler="undeclared.lambda_handler",
        runtime=function.runtime,
        architecture=function.architecture,
        artifact=tmp_path,
        mirror=function.mirror,
    )

    with pytest.raises(AssertionError, match="No module named 'yaml'"):
        import_handler(probe, lambda_build)


def test_the_architecture_check_sees_x86_64_code(lambda_build: LambdaBuild) -> None:
    mirror = next(iter(lambda_build.functions.values())).mirror

    assert {elf_architecture(path) for path in mirror.glob("pydantic_core/*.so")} == {"x86_64"}


def test_the_wheel_check_refuses_x86_64_and_a_newer_glibc() -> None:
    supported = runtime_tags("python3.12", "arm64")

    assert parse_tag("cp312-cp312-manylinux_2_28_aarch64") <= supported
    assert not parse_tag("cp312-cp312-manylinux_2_28_x86_64") & supported
    assert not parse_tag("cp312-cp312-manylinux_2_35_aarch64") & supported
    assert not parse_tag("cp313-cp313-manylinux_2_28_aarch64") & supported


def test_a_runtime_without_a_local_python_fails_the_gate() -> None:
    with pytest.raises(GateError, match=r"need a local Python 3\.99 .* `pyenv install 3\.99`"):
        python_for("python3.99")
