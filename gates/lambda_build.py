"""Lambda build gate: `sam build` of every function as `make deploy` does, plus what tests need to check it.

Layers built by their own Makefile (the ClamAV layer needs Amazon Linux's dnf, or Docker) cannot be built
here: a generated copy of the template leaves them and the references to them out, and says so. Next to
the artifact the gate installs, for this machine's architecture, the same requirements (the "mirror")
and the boto3 the Lambda runtime provides, so that tests can import every handler under the runtime's
Python: the artifact's own native code is built for Lambda's architecture and cannot load here.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from filepipe.local.services.awslambda.packages import LAMBDA_RUNTIME_SDK
from gates import BUILD_DIR, GATES_DIR, ROOT, GateError, run, tool

BUILD_ROOT = BUILD_DIR / "lambda"
TEMPLATE_COPY = BUILD_ROOT / "template.json"
ARTIFACTS = BUILD_ROOT / "artifacts"
SAM_CACHE = BUILD_ROOT / "sam-cache"
PIP_CACHE = BUILD_ROOT / "pip-cache"
MIRRORS = BUILD_ROOT / "mirror"
RUNTIME_SDK = BUILD_ROOT / "runtime-sdk"
STAMPS = BUILD_ROOT / "stamps"
FUNCTION_REQUIREMENTS = ROOT / "functions" / "requirements.txt"
# The runtime's SDK: the one the local runtime gives functions too (pinned in one place).
RUNTIME_SDK_PACKAGES = LAMBDA_RUNTIME_SDK
_EXCLUDED_FROM_HASH = {"__pycache__", ".pytest_cache", ".mypy_cache"}


@dataclass(frozen=True)
class FunctionBuild:
    """One function of the template and the folder `sam build` made for it."""

    logical_id: str
    handler: str
    runtime: str
    architecture: str
    artifact: Path
    mirror: Path
    """The same requirements installed for this machine, to import the handler here."""


@dataclass(frozen=True)
class LambdaBuild:
    """The outcome of the gate: every function built, and what was left out and why."""

    functions: dict[str, FunctionBuild]
    left_out: dict[str, str]
    python: Path
    runtime_sdk: Path


def requirement_lines(path: Path) -> list[str]:
    """The requirements of a pip requirements file, comments and blank lines left out."""
    return [
        line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]


def exact_pins(path: Path = FUNCTION_REQUIREMENTS) -> dict[str, str]:
    """Each package of a requirements file (canonical name) with its version; only ``==`` pins are taken."""
    pins: dict[str, str] = {}
    for line in requirement_lines(path):
        try:
            requirement = Requirement(line)
        except InvalidRequirement as error:
            raise GateError(f"{path.name}: {error}") from error
        specifiers = list(requirement.specifier)
        if len(specifiers) != 1 or specifiers[0].operator != "==" or "*" in specifiers[0].version:
            raise GateError(f"{path.name}: {line!r} is not an exact pin (name==version)")
        pins[canonicalize_name(requirement.name)] = specifiers[0].version
    return pins


def buildable_template(source: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The template without the layers that cannot be built on this machine, and those layers with why."""
    template = json.loads(json.dumps(source))
    resources = template["Resources"]
    left_out = {
        name: "its BuildMethod makefile runs the layer's own Makefile, which needs Amazon Linux or Docker"
        for name, resource in resources.items()
        if resource["Type"] == "AWS::Serverless::LayerVersion"
        and resource.get("Metadata", {}).get("BuildMethod") == "makefile"
    }
    for name in left_out:
        del resources[name]
    holders = [template.get("Globals", {}).get("Function", {})]
    holders += [
        r.get("Properties", {}) for r in resources.values() if r["Type"] == "AWS::Serverless::Function"
    ]
    for properties in holders:
        if "Layers" in properties:
            properties["Layers"] = [
                layer for layer in properties["Layers"] if layer.get("Ref") not in left_out
            ]
    return template, left_out


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each function's properties with the Globals applied (the ones the build depends on)."""
    defaults = template.get("Globals", {}).get("Function", {})
    out = {}
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            out[name] = {**defaults, **resource.get("Properties", {})}
    return out


def python_for(runtime: str) -> Path:
    """A local interpreter of the runtime's Python version: pyenv's newest, else pythonX.Y on PATH."""
    match = re.fullmatch(r"python(\d+\.\d+)", runtime)
    if not match:
        raise GateError(f"runtime {runtime} is not a Python runtime this gate can build")
    wanted = match.group(1)
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    installed = [
        path
        for path in (pyenv_root / "versions").glob(f"{wanted}.*/bin/python{wanted}")
        if re.fullmatch(rf"{re.escape(wanted)}\.\d+", path.parents[1].name)
    ]
    installed.sort(key=lambda path: int(path.parents[1].name.rsplit(".", 1)[1]), reverse=True)
    on_path = shutil.which(f"python{wanted}")
    for candidate in [*installed, *([Path(on_path)] if on_path else [])]:
        if candidate.is_file():
            return candidate
    raise GateError(
        f"the {runtime} functions need a local Python {wanted} to build and import them, and there is"
        f" none in pyenv ({pyenv_root}) or on PATH: install it with `pyenv install {wanted}`"
    )


def _refresh(output: Path, inputs: list[bytes], make: Callable[[], None], force: bool = False) -> None:
    """Make ``output`` unless it exists and was made from these very inputs."""
    digest = hashlib.sha256(b"\0".join([Path(__file__).read_bytes(), *inputs])).hexdigest()
    stamp = STAMPS / f"{output.name}.sha256"
    if not force and output.exists() and stamp.is_file() and stamp.read_text() == digest:
        return
    stamp.unlink(missing_ok=True)
    make()
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(digest)


def _tree(folder: Path) -> list[bytes]:
    """The names and contents of the files a build copies from ``folder``."""
    out = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not _EXCLUDED_FROM_HASH & set(path.parts) and path.suffix != ".pyc":
            out += [str(path.relative_to(ROOT)).encode(), path.read_bytes()]
    return out


def _run(command: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    result = run(command, cwd=cwd, env=env)
    if result.returncode != 0:
        raise GateError(
            f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )


def _pip_install(python: Path, target: Path, arguments: list[str]) -> None:
    """Install into a fresh ``target`` folder with the runtime's interpreter (this machine's platform)."""
    shutil.rmtree(target, ignore_errors=True)
    env = {**os.environ, "PIP_CACHE_DIR": str(PIP_CACHE), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    _run([str(python), "-m", "pip", "install", "--quiet", "--target", str(target), *arguments], env=env)


def build(force: bool = False) -> LambdaBuild:
    """Build every function of template.yaml (unless nothing it depends on changed) and its mirrors."""
    from samtranslator.yaml_helper import yaml_parse

    template, left_out = buildable_template(yaml_parse((ROOT / "template.yaml").read_text()))
    functions = _functions(template)
    runtimes = {properties["Runtime"] for properties in functions.values()}
    if len(runtimes) != 1:
        raise GateError(
            f"functions use several runtimes ({', '.join(sorted(runtimes))}): build each one here"
        )
    python = python_for(runtimes.pop())
    code_dirs = {(ROOT / str(properties["CodeUri"])).resolve() for properties in functions.values()}
    for code_dir in code_dirs:
        exact_pins(code_dir / "requirements.txt")
    template_text = json.dumps(template, indent=1, sort_keys=True)

    def sam_build() -> None:
        BUILD_ROOT.mkdir(parents=True, exist_ok=True)
        TEMPLATE_COPY.write_text(template_text)
        env = {
            **os.environ,
            "PATH": f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "SAM_CLI_TELEMETRY": "0",
            "PIP_CACHE_DIR": str(PIP_CACHE),
        }
        _run(
            [
                *(str(tool("sam", "sam")), "build", "--template-file", str(TEMPLATE_COPY)),
                *("--base-dir", str(ROOT), "--build-dir", str(ARTIFACTS), "--cache-dir", str(SAM_CACHE)),
                "--cached",
            ],
            env=env,
            cwd=BUILD_ROOT,
        )

    sam_lock = (GATES_DIR / "requirements" / "sam.txt").read_bytes()
    code = [piece for code_dir in sorted(code_dirs) for piece in _tree(code_dir)]
    _refresh(ARTIFACTS, [template_text.encode(), bytes(python), sam_lock, *code], sam_build, force)
    for code_dir in code_dirs:
        requirements = code_dir / "requirements.txt"
        mirror = _mirror_of(code_dir)
        _refresh(
            mirror,
            [bytes(python), requirements.read_bytes()],
            partial(_pip_install, python, mirror, ["-r", str(requirements)]),
            force,
        )
    _refresh(
        RUNTIME_SDK,
        [bytes(python), *(p.encode() for p in RUNTIME_SDK_PACKAGES)],
        partial(_pip_install, python, RUNTIME_SDK, list(RUNTIME_SDK_PACKAGES)),
        force,
    )

    built = {}
    for name, properties in functions.items():
        architectures = properties.get("Architectures", ["x86_64"])
        built[name] = FunctionBuild(
            logical_id=name,
            handler=properties["Handler"],
            runtime=properties["Runtime"],
            architecture=architectures[0],
            artifact=ARTIFACTS / name,
            mirror=_mirror_of((ROOT / str(properties["CodeUri"])).resolve()),
        )
    return LambdaBuild(functions=built, left_out=left_out, python=python, runtime_sdk=RUNTIME_SDK)


def _mirror_of(code_dir: Path) -> Path:
    return MIRRORS / str(code_dir.relative_to(ROOT)).replace(os.sep, "-")


def main() -> int:
    started = time.monotonic()
    result = build(force="--force" in sys.argv[1:])
    for name, why in result.left_out.items():
        print(f"lambda build: left out {name}: {why}")
    names = ", ".join(result.functions)
    print(f"lambda build: {len(result.functions)} functions in {time.monotonic() - started:.1f} s: {names}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
