"""Lambda build gate: `sam build` of every .zip function as `make deploy` does; the container image functions
checked as far as this machine can without Docker; and what tests need to check both.

Next to each .zip artifact the gate installs, for this machine's architecture, the same requirements (the
"mirror") and the boto3 the Lambda runtime provides, so that tests can import every handler under the
runtime's Python: the artifact's own native code is built for Lambda's architecture and cannot load here.

Image functions (``PackageType: Image``) are built by `sam build` with Docker, which this machine does not
have: the gate leaves them out of its `sam build`, says so, and checks their Dockerfile instead. hadolint
must pass; every base image must be pinned by digest; every file a ``COPY`` takes from the build context
must exist; the handler (``ImageConfig.Command``, else the Dockerfile's ``CMD``) must be among the files the
image copies into its working directory. For tests it lays those files out as the image would (RUN steps
are not replayed) and installs, for this machine and the image's Python version, each requirements file the
Dockerfile pip-installs, so that the handler can be imported with the image's layout.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path, PurePosixPath
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
IMAGES = BUILD_ROOT / "images"
HADOLINT_REQUIREMENTS = GATES_DIR / "requirements" / "hadolint.txt"
HADOLINT_DIR = BUILD_ROOT / "hadolint"
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
class ImageFunction:
    """A container image function of the template, as far as it can be checked without Docker."""

    logical_id: str
    handler: str
    architecture: str
    context: Path
    dockerfile: Path
    python: Path
    """A local interpreter of the image's Python version (from its base image's tag)."""
    task_root: Path
    """The files the image copies into its working directory, laid out here."""
    package_dirs: list[Path] = field(default_factory=list)
    """The requirements the Dockerfile pip-installs, installed for this machine: the working directory's
    packages (``--target``) first, then the interpreter's, as the image's ``sys.path`` orders them."""

    @property
    def import_path(self) -> list[Path]:
        return [self.task_root, *self.package_dirs]


@dataclass(frozen=True)
class LambdaBuild:
    """The outcome of the gate: every function built or checked, and what was left out and why."""

    functions: dict[str, FunctionBuild]
    left_out: dict[str, str]
    python: Path
    runtime_sdk: Path
    images: dict[str, ImageFunction] = field(default_factory=dict)
    image_problems: list[str] = field(default_factory=list)


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


def is_image_function(resource: dict[str, Any]) -> bool:
    return (
        resource["Type"] == "AWS::Serverless::Function"
        and resource.get("Properties", {}).get("PackageType") == "Image"
    )


def buildable_template(source: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The template without what `sam build` cannot build on this machine, and what was left out with why."""
    template = json.loads(json.dumps(source))
    resources = template["Resources"]
    left_out = {
        name: "a container image function: `sam build` needs Docker for it; its Dockerfile is checked instead"
        for name, resource in resources.items()
        if is_image_function(resource)
    }
    for name in left_out:
        del resources[name]
    return template, left_out


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each function's properties with the Globals applied (the ones the build depends on)."""
    defaults = template.get("Globals", {}).get("Function", {})
    out = {}
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            out[name] = {**defaults, **resource.get("Properties", {})}
    return out


# ---------------------------------------------------------------- Dockerfiles, read without Docker


@dataclass(frozen=True)
class DockerInstruction:
    keyword: str
    arguments: str
    line: int


def parse_dockerfile(text: str) -> list[DockerInstruction]:
    """Instructions with their continuation lines joined; comments and parser directives left out."""
    instructions: list[DockerInstruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue  # Docker drops comment lines, inside a continuation too
        if not pending:
            start = number
        continued = stripped.endswith("\\")
        pending.append(stripped[:-1].strip() if continued else stripped)
        if not continued:
            keyword, _, arguments = " ".join(pending).partition(" ")
            instructions.append(DockerInstruction(keyword.upper(), arguments.strip(), start))
            pending = []
    if pending:
        raise GateError(f"Dockerfile ends inside a continued instruction (line {start})")
    return instructions


def _build_arguments(instructions: list[DockerInstruction]) -> dict[str, str]:
    defaults = {}
    for instruction in instructions:
        if instruction.keyword == "ARG" and "=" in instruction.arguments:
            name, _, value = instruction.arguments.partition("=")
            defaults[name.strip()] = value.strip().strip('"')
    return defaults


def _expand(text: str, arguments: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: arguments.get(m.group(1) or m.group(2), m.group(0)), text)


def _exec_form(arguments: str) -> list[str]:
    """The JSON (exec) form of CMD/ENTRYPOINT; the shell form as one string."""
    if arguments.startswith("["):
        value = json.loads(arguments)
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return value
    return [arguments]


@dataclass
class DockerfileImage:
    """What a Dockerfile copies into its final image, from where, and how the image starts."""

    base_images: list[str]
    files: dict[str, Path]
    """Each file's path in the image and the build-context file it comes from."""
    workdir: str
    entrypoint: list[str]
    command: list[str]
    pip_installs: list[tuple[Path, str | None]]
    """Each requirements file the final stage pip-installs (a context file) and its ``--target``, if any."""
    problems: list[str]


def _copied(source: Path, destination: str) -> dict[str, Path]:
    if source.is_dir():
        return {
            posixpath.join(destination, path.relative_to(source).as_posix()): path
            for path in sorted(source.rglob("*"))
            if path.is_file() and not _EXCLUDED_FROM_HASH & set(path.parts) and path.suffix != ".pyc"
        }
    target = posixpath.join(destination, source.name) if destination.endswith("/") else destination
    return {target: source}


def read_dockerfile(dockerfile: Path, context: Path) -> DockerfileImage:
    """Follow the Dockerfile's stages, COPYs and pip installs; RUN steps themselves are not replayed."""
    instructions = parse_dockerfile(dockerfile.read_text())
    arguments = _build_arguments(instructions)
    stages: dict[str, dict[str, Path]] = {}
    files: dict[str, Path] = {}
    image = DockerfileImage([], files, "/", [], [], [], [])
    context = context.resolve()
    for instruction in instructions:
        text = _expand(instruction.arguments, arguments)
        where = f"{dockerfile.name}:{instruction.line}"
        if instruction.keyword == "FROM":
            reference, _, alias = text.partition(" AS ") if " AS " in text else text.partition(" as ")
            reference = reference.split()[-1]
            if reference in stages:
                files = dict(stages[reference])
            else:
                files = {}
                image.base_images.append(reference)
                if not re.search(r"@sha256:[0-9a-f]{64}$", reference):
                    image.problems.append(f"{where}: base image {reference} is not pinned by digest")
            if alias.strip():
                stages[alias.strip()] = files
            image.files, image.workdir, image.pip_installs = files, "/", []
        elif instruction.keyword in ("COPY", "ADD"):
            words = shlex.split(text)
            flags = [word for word in words if word.startswith("--")]
            *sources, destination = [word for word in words if not word.startswith("--")]
            stage = next((flag.split("=", 1)[1] for flag in flags if flag.startswith("--from=")), None)
            if instruction.keyword == "ADD":
                image.problems.append(f"{where}: ADD fetches and unpacks; use COPY")
            for source in sources:
                if stage is not None:
                    prefix = source.rstrip("/") + "/"
                    for path, origin in list(stages.get(stage, {}).items()):
                        if path.startswith(prefix):
                            files[posixpath.join(destination, path.removeprefix(prefix))] = origin
                    continue
                origin = (context / source).resolve()
                if not origin.is_relative_to(context) or not origin.exists():
                    image.problems.append(
                        f"{where}: COPY source {source} is not in the build context {context}"
                    )
                    continue
                files.update(_copied(origin, destination))
        elif instruction.keyword == "WORKDIR":
            image.workdir = posixpath.join(image.workdir, text)
        elif instruction.keyword == "ENTRYPOINT":
            image.entrypoint = _exec_form(text)
        elif instruction.keyword == "CMD":
            image.command = _exec_form(text)
        elif instruction.keyword == "RUN":
            for step in re.split(r"&&|;", text):
                words = shlex.split(step)
                if "pip" not in words[:4] or "install" not in words:
                    continue
                target = words[words.index("--target") + 1] if "--target" in words else None
                for index, word in enumerate(words[:-1]):
                    if word in ("-r", "--requirement"):
                        origin_file = files.get(words[index + 1])
                        if origin_file is None:
                            image.problems.append(
                                f"{where}: {words[index + 1]} was not copied into the image"
                            )
                        else:
                            image.pip_installs.append((origin_file, target))
    image.files = files
    return image


def hadolint() -> Path:
    """hadolint as gates/requirements/hadolint.txt pins it, installed once into the build folder."""
    requirements = HADOLINT_REQUIREMENTS.read_bytes()
    _refresh(
        HADOLINT_DIR,
        [requirements],
        partial(_pip_install, Path(sys.executable), HADOLINT_DIR, ["-r", str(HADOLINT_REQUIREMENTS)]),
    )
    return HADOLINT_DIR / "bin" / "hadolint"


def hadolint_findings(dockerfile: Path) -> list[str]:
    """hadolint's findings on a Dockerfile, one line each; empty when it passes."""
    result = run([str(hadolint()), "--no-color", str(dockerfile)], timeout=120)
    if result.returncode == 0:
        return []
    return [line for line in (result.stdout + result.stderr).splitlines() if line.strip()] or [
        f"hadolint exited with {result.returncode}"
    ]


def _image_python(base_images: list[str]) -> str:
    """The runtime name of the last base image's Python (``python:3.12.12-slim...`` is python3.12)."""
    match = re.match(
        r"^(?:docker\.io/)?(?:library/)?python:(\d+)\.(\d+)", base_images[-1] if base_images else ""
    )
    if match is None:
        raise GateError(f"cannot tell the Python version of base image {base_images[-1:]}")
    return f"python{match.group(1)}.{match.group(2)}"


def _mirror_of_requirements(requirements: Path) -> Path:
    if requirements.name == "requirements.txt":
        return _mirror_of(requirements.parent)
    return MIRRORS / str(requirements.relative_to(ROOT).with_suffix("")).replace(os.sep, "-")


def check_image_function(
    logical_id: str, properties: dict[str, Any], metadata: dict[str, Any], force: bool = False
) -> tuple[ImageFunction | None, list[str]]:
    """Check an image function's Dockerfile; lay out and install what importing its handler needs."""
    context = (ROOT / str(metadata.get("DockerContext", ""))).resolve()
    dockerfile = context / str(metadata.get("Dockerfile", "Dockerfile"))
    if not metadata.get("DockerContext") or not dockerfile.is_file():
        return None, [f"{logical_id}: no Dockerfile at {dockerfile} (Metadata DockerContext and Dockerfile)"]
    image = read_dockerfile(dockerfile, context)
    problems = [f"{logical_id}: {problem}" for problem in image.problems]
    problems += [f"{logical_id}: hadolint: {finding}" for finding in hadolint_findings(dockerfile)]
    command = properties.get("ImageConfig", {}).get("Command") or image.command
    handler = command[0] if command else ""
    module_path = posixpath.join(image.workdir, handler.rpartition(".")[0].replace(".", "/") + ".py")
    if not image.entrypoint:
        problems.append(f"{logical_id}: the Dockerfile has no ENTRYPOINT (the runtime interface client)")
    if module_path not in image.files:
        problems.append(
            f"{logical_id}: handler {handler!r} is not among the files copied into {image.workdir}"
        )
    python = python_for(_image_python(image.base_images))

    task_root = IMAGES / f"{logical_id}-task"  # unique name: _refresh keeps one stamp per folder name
    inside = {path: origin for path, origin in image.files.items() if path.startswith(image.workdir + "/")}

    def lay_out() -> None:
        shutil.rmtree(task_root, ignore_errors=True)
        for path, origin in inside.items():
            target = task_root / PurePosixPath(path).relative_to(image.workdir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(origin, target)

    layout = [
        piece for path, origin in sorted(inside.items()) for piece in (path.encode(), origin.read_bytes())
    ]
    _refresh(task_root, layout, lay_out, force)
    installs = sorted(image.pip_installs, key=lambda install: install[1] != image.workdir)
    package_dirs = []
    for requirements, _target in installs:
        mirror = _mirror_of_requirements(requirements)
        _refresh(
            mirror,
            [bytes(python), requirements.read_bytes()],
            partial(_pip_install, python, mirror, ["-r", str(requirements)]),
            force,
        )
        package_dirs.append(mirror)
    architectures = properties.get("Architectures", ["x86_64"])
    function = ImageFunction(
        logical_id, handler, architectures[0], context, dockerfile, python, task_root, package_dirs
    )
    return function, problems


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

    source = yaml_parse((ROOT / "template.yaml").read_text())
    template, left_out = buildable_template(source)
    images: dict[str, ImageFunction] = {}
    image_problems: list[str] = []
    for name, properties in _functions(source).items():
        if name in left_out:
            metadata = source["Resources"][name].get("Metadata", {})
            image, problems = check_image_function(name, properties, metadata, force)
            image_problems += problems
            if image is not None:
                images[name] = image
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
    return LambdaBuild(
        functions=built,
        left_out=left_out,
        python=python,
        runtime_sdk=RUNTIME_SDK,
        images=images,
        image_problems=image_problems,
    )


def _mirror_of(code_dir: Path) -> Path:
    return MIRRORS / str(code_dir.relative_to(ROOT)).replace(os.sep, "-")


def main() -> int:
    started = time.monotonic()
    result = build(force="--force" in sys.argv[1:])
    for name, why in result.left_out.items():
        print(f"lambda build: left out {name}: {why}")
    for problem in result.image_problems:
        print(f"lambda build: {problem}", file=sys.stderr)
    names = ", ".join(result.functions)
    print(f"lambda build: {len(result.functions)} functions in {time.monotonic() - started:.1f} s: {names}")
    if result.images:
        checked = ", ".join(
            f"{name} ({image.dockerfile.relative_to(ROOT)})" for name, image in result.images.items()
        )
        print(f"lambda build: image functions checked without Docker: {checked}")
    return 1 if result.image_problems else 0


if __name__ == "__main__":
    sys.exit(main())
