"""The Lambda build gate: `sam build` of every .zip function, then checks of the package Lambda would run;
and the container image functions, checked as far as this machine can without Docker.

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
- Image functions (the ClamAV scan and definitions update): no Docker here, so the image is never built.
  The Dockerfile passes hadolint and the gate's own checks (base image pinned by digest, COPY sources
  present, the handler among the copied files); the files it copies into /var/task are laid out as the
  image has them, and the requirement files it pip-installs are installed for x86_64 under the image's
  Python version (3.12). With exactly those folders, the handler imports, and the image's ENTRYPOINT
  (`python -m awslambdaric`) serves invocations from a stand-in of Lambda's Runtime API on 127.0.0.1:
  a clean file and EICAR scanned by Debian's clamd (the ClamAV the image installs, built for x86_64).
  Not covered: Debian's arm64 packages, the base image's contents, and the build itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import distributions
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer
from packaging.requirements import Requirement
from packaging.tags import Tag, compatible_tags, cpython_tags, parse_tag
from packaging.utils import canonicalize_name

from filepipe.clamd import NOT_INSTALLED, SIGNATURE_NAME, LocalClamd, eicar_bytes
from filepipe.local.services.awslambda.packages import LAMBDA_RUNTIME_SDK
from filepipe.template import Template
from gates import ROOT, GateError, run
from gates.lambda_build import (
    FunctionBuild,
    ImageFunction,
    LambdaBuild,
    build,
    exact_pins,
    hadolint_findings,
    python_for,
    read_dockerfile,
    requirement_lines,
)
from tests.stack import put_upload

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


def test_every_function_is_built_or_its_image_checked(lambda_build: LambdaBuild, template: Template) -> None:
    resources = template.source["Resources"]
    functions = {n for n, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}
    images = {n for n in functions if resources[n]["Properties"].get("PackageType") == "Image"}

    assert set(lambda_build.functions) == functions - images
    assert set(lambda_build.images) == set(lambda_build.left_out) == images
    for function in lambda_build.functions.values():
        module = function.handler.rpartition(".")[0]
        assert (function.artifact / (module.replace(".", "/") + ".py")).is_file(), function.logical_id
    assert all("needs Docker" in reason for reason in lambda_build.left_out.values())


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


# ---------------------------------------------------------------- container image functions, without Docker

IMAGE_PROBE = """
import importlib, json, sys
sys.path[:0] = json.loads(sys.argv[1])
module_name, _, attribute = sys.argv[2].rpartition(".")
module = importlib.import_module(module_name)
entry = importlib.import_module(sys.argv[3])
print(json.dumps({"file": module.__file__, "callable": callable(getattr(module, attribute)),
                  "entry": entry.__file__}))
"""
GOOD_DOCKERFILE = """\
FROM python:3.12.12-slim-bookworm@sha256:{digest} AS base
FROM base AS code
COPY app/ /var/task/app/
FROM base
COPY requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir --target /var/task -r /tmp/requirements.txt
COPY --from=code /var/task/ /var/task/
WORKDIR /var/task
ENTRYPOINT ["/usr/local/bin/python", "-m", "awslambdaric"]
CMD ["app.handler.main"]
""".replace("{digest}", "0" * 64)


def test_the_image_dockerfiles_pass_hadolint_and_the_gate_s_checks(lambda_build: LambdaBuild) -> None:
    assert lambda_build.images
    assert lambda_build.image_problems == []


def test_the_image_is_laid_out_as_the_dockerfile_copies_it(lambda_build: LambdaBuild) -> None:
    image = lambda_build.images["ScanFunction"]
    layout = read_dockerfile(image.dockerfile, image.context)

    assert layout.workdir == "/var/task"
    assert layout.entrypoint == ["/usr/local/bin/python", "-m", "awslambdaric"]
    assert layout.command == ["scan.handler.lambda_handler"]
    assert layout.files["/var/task/scan/handler.py"] == image.context / "scan" / "handler.py"
    assert layout.files["/var/task/common/errors.py"] == image.context / "common" / "errors.py"
    # The packages go beside the code (`sam build`'s layout), the runtime's into the interpreter.
    assert [(path.name, target) for path, target in layout.pip_installs] == [
        ("runtime-requirements.txt", None),
        ("requirements.txt", "/var/task"),
    ]
    assert (image.task_root / "scan" / "clamd.py").read_bytes() == (
        image.context / "scan" / "clamd.py"
    ).read_bytes()
    assert {f.handler for f in lambda_build.images.values()} == {
        "scan.handler.lambda_handler",
        "scan.definitions.lambda_handler",
    }


def import_image_handler(image: ImageFunction) -> dict[str, object]:
    """Import the handler and the ENTRYPOINT's module with the image's folders only (-I: no site, no env)."""
    path = [str(folder) for folder in image.import_path]
    result = run(
        [
            str(image.python),
            "-I",
            "-S",
            "-B",
            "-c",
            IMAGE_PROBE,
            json.dumps(path),
            image.handler,
            "awslambdaric",
        ],
        timeout=120,
        env={},
    )
    if result.returncode != 0:
        raise AssertionError(f"{image.logical_id} ({image.handler}) does not import:\n{result.stderr}")
    outcome: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return outcome


def test_every_image_handler_imports_with_the_image_s_folders_only(lambda_build: LambdaBuild) -> None:
    for image in lambda_build.images.values():
        outcome = import_image_handler(image)

        assert outcome["callable"] is True, image.logical_id
        assert Path(str(outcome["file"])).is_relative_to(image.task_root), image.logical_id
        assert Path(str(outcome["entry"])).is_relative_to(image.package_dirs[-1]), image.logical_id


def test_the_image_brings_the_runtime_s_sdk_at_the_version_the_local_runtime_gives() -> None:
    runtime = ROOT / "functions" / "scan" / "image" / "runtime-requirements.txt"
    pins = {}
    for line in requirement_lines(runtime):
        if not line.startswith("--hash"):
            requirement = Requirement(line.removesuffix("\\").strip())
            pins[canonicalize_name(requirement.name)] = str(requirement.specifier)
    wanted = {
        canonicalize_name(Requirement(p).name): str(Requirement(p).specifier) for p in LAMBDA_RUNTIME_SDK
    }

    assert {name: pins[name] for name in wanted} == wanted
    assert "awslambdaric" in pins
    assert "--hash=sha256:" in runtime.read_text()


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda text: text.replace("@sha256:" + "0" * 64, ""), "is not pinned by digest"),
        (
            lambda text: text.replace("COPY app/", "COPY missing/"),
            "COPY source missing/ is not in the build context",
        ),
        (lambda text: text.replace("COPY app/", "COPY ../outside/"), "is not in the build context"),
        (lambda text: text.replace("-r /tmp/requirements.txt", "-r /tmp/other.txt"), "was not copied into"),
        (lambda text: text.replace("COPY requirements.txt", "ADD requirements.txt"), "use COPY"),
    ],
)
def test_the_dockerfile_checks_refuse_what_they_guard(tmp_path: Path, change: Any, problem: str) -> None:
    context = tmp_path / "context"
    (context / "app").mkdir(parents=True)
    (context / "app" / "handler.py").write_text("def main(event, context):\n    return event\n")
    (context / "requirements.txt").write_text("six==1.17.0\n")
    (tmp_path / "outside").mkdir()
    good = context / "Dockerfile"
    good.write_text(GOOD_DOCKERFILE)
    assert read_dockerfile(good, context).problems == []
    assert read_dockerfile(good, context).files["/var/task/app/handler.py"] == context / "app" / "handler.py"

    broken = context / "Dockerfile.broken"
    broken.write_text(change(GOOD_DOCKERFILE))

    assert any(problem in found for found in read_dockerfile(broken, context).problems)


def test_hadolint_refuses_an_unpinned_package(tmp_path: Path) -> None:
    dockerfile = ROOT / "functions" / "scan" / "image" / "Dockerfile"
    unpinned = tmp_path / "Dockerfile"
    unpinned.write_text(
        dockerfile.read_text().replace('"clamav-daemon=${CLAMAV_DEBIAN_VERSION}"', "clamav-daemon")
    )

    assert hadolint_findings(dockerfile) == []
    assert any("DL3008" in finding for finding in hadolint_findings(unpinned))


# ---------------------------------------------------------------- the image's ENTRYPOINT against Runtime API

RUNTIME_API = "/2018-06-01/runtime"
INGEST_BUCKET = "filepipe-ingest-image-test"


class FakeRuntimeApi:
    """Lambda's Runtime API as the runtime interface client uses it: next invocation, response, error."""

    def __init__(self) -> None:
        self.events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.results: queue.Queue[tuple[str, str, dict[str, Any]]] = queue.Queue()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != f"{RUNTIME_API}/invocation/next":
                    self.send_error(404)
                    return
                try:
                    request_id, event = api.events.get(timeout=60)
                except queue.Empty:
                    self.send_error(500)
                    return
                body = json.dumps(event).encode()
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
                self.send_header("Lambda-Runtime-Deadline-Ms", str(int((time.time() + 300) * 1000)))
                self.send_header(
                    "Lambda-Runtime-Invoked-Function-Arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:ScanFunction",
                )
                self.send_header(
                    "Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Sampled=0"
                )
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"null")
                parts = self.path.removeprefix(RUNTIME_API).strip("/").split("/")
                kind = parts[-1]
                api.results.put((parts[1] if parts[0] == "invocation" else "init", kind, body))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def invoke(self, request_id: str, event: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
        self.events.put((request_id, event))
        return self.results.get(timeout=60)


@pytest.fixture
def moto_s3() -> Iterator[Any]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket=INGEST_BUCKET)
    s3.put_bucket_versioning(Bucket=INGEST_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    try:
        yield s3
    finally:
        s3._endpoint.http_session.close()
        requests.post(f"{endpoint}/moto-api/reset", timeout=10).close()
        server.stop()
        # stop() shuts the server down but leaves its listening socket open.
        if server._server is not None:
            server._server.server_close()


@pytest.mark.clamd
@pytest.mark.skipif(not LocalClamd.is_available(), reason=NOT_INSTALLED)
def test_the_image_s_entrypoint_serves_scans_through_the_runtime_api(
    lambda_build: LambdaBuild, moto_s3: Any, tmp_path: Path
) -> None:
    image = lambda_build.images["ScanFunction"]
    entrypoint = read_dockerfile(image.dockerfile, image.context).entrypoint
    api = FakeRuntimeApi()
    api.thread.start()
    endpoint = moto_s3.meta.endpoint_url
    clean = put_upload(moto_s3, INGEST_BUCKET, "owner-1", b"nothing to see here")
    infected = put_upload(moto_s3, INGEST_BUCKET, "owner-1", eicar_bytes())
    with LocalClamd(tmp_path / "clamd", max_bytes=1024 * 1024) as clamd:
        environment = {
            # What Lambda sets for a function, and what the template gives ScanFunction.
            "AWS_LAMBDA_RUNTIME_API": api.address,
            "AWS_LAMBDA_FUNCTION_NAME": "ScanFunction",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "3008",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_ENDPOINT_URL": endpoint,
            "POWERTOOLS_SERVICE_NAME": "filepipe",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "CLAMD_ADDRESS": clamd.address,
            "DEFINITIONS_MAX_AGE_HOURS": "48",
            "SCAN_MAX_BYTES": str(1024 * 1024),
            "INGEST_BUCKET": INGEST_BUCKET,
            "CLEAN_BUCKET": "filepipe-files-image-test",
            # The image's interpreter has the runtime's packages in site-packages; here they are folders.
            "PYTHONPATH": os.pathsep.join(str(folder) for folder in image.package_dirs),
        }
        # The ENTRYPOINT as written, with this machine's Python 3.12 for the image's; -S: no site-packages.
        assert entrypoint[1:] == ["-m", "awslambdaric"]
        process = subprocess.Popen(
            [str(image.python), "-S", "-B", *entrypoint[1:], image.handler],
            cwd=image.task_root,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            clean_result = api.invoke("request-1", {"file": clean.to_state(), "executionName": "run-1"})
            infected_result = api.invoke("request-2", {"file": infected.to_state(), "executionName": "run-2"})
        finally:
            process.kill()
            output = process.communicate(timeout=30)[0].decode(errors="replace")
            api.stop()

    assert clean_result[:2] == ("request-1", "response"), output
    assert clean_result[2]["verdict"] == "CLEAN"
    assert clean_result[2]["sha256"] == hashlib.sha256(b"nothing to see here").hexdigest()
    assert clean_result[2]["engine"].startswith("ClamAV 1.4.")
    assert infected_result[:2] == ("request-2", "response"), output
    assert infected_result[2]["verdict"] == "INFECTED"
    assert infected_result[2]["signature"].startswith(SIGNATURE_NAME)


def test_a_handler_the_image_lacks_fails_through_the_runtime_api(lambda_build: LambdaBuild) -> None:
    image = lambda_build.images["ScanFunction"]
    api = FakeRuntimeApi()
    api.thread.start()
    environment = {
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "PYTHONPATH": os.pathsep.join(str(folder) for folder in image.package_dirs),
    }
    process = subprocess.Popen(
        [str(image.python), "-S", "-B", "-m", "awslambdaric", "scan.missing.lambda_handler"],
        cwd=image.task_root,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        where, kind, body = api.results.get(timeout=60)
    finally:
        process.kill()
        process.wait(timeout=30)
        api.stop()

    assert (where, kind) == ("init", "error")
    assert body["errorType"] == "Runtime.ImportModuleError"
