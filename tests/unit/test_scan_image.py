"""The ClamAV image's layout as the scan code relies on it: Debian's paths, the pinned ClamAV, the template.

The image (functions/scan/image/Dockerfile) installs Debian's ClamAV packages at one pinned version; this
machine runs Debian's packages too. These tests hold the scan code's default paths to the files those
packages install, the image's pin to the version installed here (so that every clamd test here runs the
ClamAV the image ships, built for this machine's architecture), and start the sandbox's clamd from those
default paths. The image itself needs Docker and is not built here (tests/gates/test_lambda_build.py
checks its Dockerfile and runs its entry point).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

import common.aws
import common.settings
from common.storage import ObjectStore
from filepipe.clamd import NOT_INSTALLED, LocalClamd, build_database_container, eicar_bytes
from filepipe.template import Template
from gates.lambda_build import parse_dockerfile, read_dockerfile
from scan import definitions, embedded, handler
from tests.stack import put_upload

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "functions" / "scan" / "image" / "Dockerfile"
REGION = "us-east-1"
INGEST_BUCKET = "filepipe-ingest-image"
DEFINITIONS_BUCKET = "filepipe-definitions-image"
IMAGE_FUNCTIONS = {
    "ScanFunction": "scan.handler.lambda_handler",
    "DefinitionsUpdateFunction": "scan.definitions.lambda_handler",
}
needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="not a Debian machine")


def pinned_clamav_version() -> str:
    for instruction in parse_dockerfile(DOCKERFILE.read_text()):
        if instruction.keyword == "ARG" and instruction.arguments.startswith("CLAMAV_DEBIAN_VERSION="):
            return instruction.arguments.split("=", 1)[1]
    raise AssertionError("the Dockerfile pins no CLAMAV_DEBIAN_VERSION")


def debian_package(name: str, field: str) -> str:
    result = subprocess.run(
        ["dpkg-query", "-W", f"-f=${{{field}}}", name], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        pytest.skip(f"Debian package {name} is not installed")
    return result.stdout


def package_files(name: str) -> set[str]:
    result = subprocess.run(["dpkg-query", "-L", name], capture_output=True, text=True, check=True)
    return set(result.stdout.splitlines())


@needs_dpkg
def test_the_image_pins_the_clamav_these_tests_run() -> None:
    pinned = pinned_clamav_version()

    assert pinned.startswith("1.4.")
    for package in ("clamav-daemon", "clamav-freshclam", "libclamav12", "clamav-base"):
        assert debian_package(package, "Version") == pinned, package
        assert f'"{package}=${{CLAMAV_DEBIAN_VERSION}}"' in DOCKERFILE.read_text()


@needs_dpkg
def test_the_sandbox_runs_clamd_and_freshclam_where_debian_installs_them() -> None:
    assert str(embedded.CLAMD_BINARY) in package_files("clamav-daemon")
    assert str(definitions.FRESHCLAM_BINARY) in package_files("clamav-freshclam")


def test_every_clamav_function_is_the_image_with_its_own_handler(template: Template) -> None:
    image = read_dockerfile(DOCKERFILE, ROOT / "functions")
    for name, handler_name in IMAGE_FUNCTIONS.items():
        source = template.source["Resources"][name]
        resource = template.resources[name]["Properties"]
        metadata = source["Metadata"]

        assert resource["PackageType"] == "Image"
        assert resource["ImageConfig"]["Command"] == [handler_name]
        assert resource["Architectures"] == ["arm64"]
        assert not {"Runtime", "Handler", "Layers"} & set(resource)
        assert (ROOT / metadata["DockerContext"] / metadata["Dockerfile"]).resolve() == DOCKERFILE
        module = handler_name.rpartition(".")[0].replace(".", "/") + ".py"
        assert image.files[f"{image.workdir}/{module}"] == ROOT / "functions" / module
    assert image.command == [IMAGE_FUNCTIONS["ScanFunction"]]
    # The Python of the other functions' runtime (python3.12), pinned by digest.
    assert re.fullmatch(r"python:3\.12\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", image.base_images[-1])
    assert not [r for r in template.source["Resources"].values() if r["Type"].endswith("LayerVersion")]


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    common.aws.reset_clients()
    common.settings.load_settings.cache_clear()
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        for bucket in (INGEST_BUCKET, DEFINITIONS_BUCKET):
            client.create_bucket(Bucket=bucket)
        client.put_bucket_versioning(Bucket=INGEST_BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield client
    common.aws.reset_clients()
    common.settings.load_settings.cache_clear()


class Context:
    function_name = "ScanFunction"
    memory_limit_in_mb = 3008
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ScanFunction"
    aws_request_id = "5b1d7e0c-0000-4000-8000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


@pytest.mark.clamd
@pytest.mark.skipif(not embedded.CLAMD_BINARY.is_file(), reason=NOT_INSTALLED)
def test_the_sandbox_starts_debian_s_clamd_once_and_scans_with_it(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert LocalClamd.is_available()
    s3.put_object(
        Bucket=DEFINITIONS_BUCKET,
        Key=embedded.DEFINITIONS_PREFIX + "daily.cud",
        Body=build_database_container(datetime.now(UTC)),
    )
    for name, value in {
        "CLAMD_ADDRESS": "embedded",
        "DEFINITIONS_BUCKET": DEFINITIONS_BUCKET,
        "DEFINITIONS_MAX_AGE_HOURS": "48",
        "SCAN_MAX_BYTES": str(1024 * 1024),
        "INGEST_BUCKET": INGEST_BUCKET,
        "CLEAN_BUCKET": "filepipe-files-image",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    common.settings.load_settings.cache_clear()
    embedded.stop_shared_embedded_clamd()
    # Only the writable root moves (a Unix socket path must stay short); the binary is the image's default.
    with tempfile.TemporaryDirectory(prefix="fpimg-") as root:
        monkeypatch.setattr(embedded, "RUNTIME_ROOT", Path(root))
        try:
            event = {"file": put_upload(s3, INGEST_BUCKET, "owner", eicar_bytes()).to_state()}
            infected = handler.lambda_handler({**event, "executionName": "a"}, Context())
            clamd = embedded.shared_embedded_clamd(ObjectStore(s3), DEFINITIONS_BUCKET, 1024 * 1024)
            first_pid = clamd.pid
            clean_ref = put_upload(s3, INGEST_BUCKET, "owner", b"fine")
            clean = handler.lambda_handler({"file": clean_ref.to_state(), "executionName": "b"}, Context())
            second_pid = clamd.pid
            command_line = Path(f"/proc/{first_pid}/cmdline").read_bytes().split(b"\0")[0]
        finally:
            embedded.stop_shared_embedded_clamd()

    assert infected["verdict"] == "INFECTED"
    assert clean["verdict"] == "CLEAN"
    assert clean["sha256"] == hashlib.sha256(b"fine").hexdigest()
    assert clean["engine"].startswith("ClamAV 1.4.")
    assert first_pid is not None
    assert second_pid == first_pid  # one clamd per sandbox, not one per invocation
    assert command_line == str(embedded.CLAMD_BINARY).encode()
    assert clamd.startup_seconds is not None
    assert clamd.startup_seconds < 10
