"""Function packages as `sam build` installs them, for this machine, cached by what they are made from.

On Lambda a function imports its code folder (the CodeUri, ``LAMBDA_TASK_ROOT``), the packages `sam build`
installed there from the folder's ``requirements.txt``, and the boto3/botocore its runtime ships; nothing
else. The local runtime gives each worker exactly that: the code folder, a package folder installed with
``pip install --target`` from the same requirements file, and a folder holding the runtime's SDK.

Both folders are installed for the interpreter the workers run on, so for this machine's architecture and
Python version (Lambda's may differ: see docs/local-parity.md). Each is kept under a hash of its inputs, so a
second start costs nothing; wheels are kept in a wheelhouse beside them, so a changed requirements file
installs what it already had without the network.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from filepipe.template import ROOT

log = logging.getLogger("filepipe.local.services.awslambda.packages")
DEFAULT_CACHE = ROOT / ".filepipe" / "cache" / "packages"
# `sam build` installs this file of the CodeUri folder into the function's package.
REQUIREMENTS_FILE = "requirements.txt"
# The SDK the python3.12 runtime ships. Lambda's docs give no version ("it depends on the runtime version and
# your AWS Region"); this is the one its python3.12 and python3.13 runtimes were seen to ship. Functions
# that need a newer SDK declare boto3 in their requirements, which come first on the path, as on Lambda.
LAMBDA_RUNTIME_SDK = ("boto3==1.38.36", "botocore==1.38.36")
# Bumped when the way a folder is installed changes, so that folders installed the old way are not reused.
_LAYOUT = "1"


class PackageInstallError(RuntimeError):
    """pip could not install a function package (the message carries pip's output)."""


@dataclass(frozen=True)
class FunctionPackages:
    """The folders a function's process imports from, in the order Lambda searches them."""

    code_dir: Path
    package_dir: Path | None
    sdk_dir: Path

    @property
    def import_path(self) -> list[str]:
        """The function's import path before the standard library: code, its package, the runtime's SDK."""
        folders = [self.code_dir, self.package_dir, self.sdk_dir]
        return [str(folder) for folder in folders if folder is not None]


@functools.cache
def interpreter_tag(python: str) -> str:
    """What makes an installed package fit an interpreter: implementation, version and platform."""
    probe = (
        "import sys, sysconfig; "
        "print(sys.implementation.cache_tag, sysconfig.get_platform(), sys.maxsize > 2**32)"
    )
    completed = subprocess.run(  # noqa: S603 - the runtime's own interpreter
        [python, "-I", "-S", "-c", probe], capture_output=True, text=True, check=True
    )
    return completed.stdout.strip()


def prepare(code_dir: Path, python: str = sys.executable, cache: Path = DEFAULT_CACHE) -> FunctionPackages:
    """The folders of a function whose code is ``code_dir``, installed now unless cached already."""
    requirements = code_dir / REQUIREMENTS_FILE
    package_dir = None
    if requirements.is_file():
        package_dir = _installed(
            cache, "package", python, requirements.read_bytes(), ["-r", str(requirements)]
        )
    sdk_dir = _installed(
        cache, "runtime-sdk", python, "\n".join(LAMBDA_RUNTIME_SDK).encode(), [*LAMBDA_RUNTIME_SDK]
    )
    return FunctionPackages(code_dir=code_dir, package_dir=package_dir, sdk_dir=sdk_dir)


def _installed(cache: Path, kind: str, python: str, inputs: bytes, requirements: list[str]) -> Path:
    digest = hashlib.sha256(b"\0".join([_LAYOUT.encode(), interpreter_tag(python).encode(), inputs]))
    folder = cache / f"{kind}-{digest.hexdigest()[:16]}"
    if (folder / ".complete").is_file():
        return folder
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache / ".lock"):
        if (folder / ".complete").is_file():  # another runtime installed it while this one waited
            return folder
        log.info("installing %s (%s) for this machine; later starts reuse it", kind, " ".join(requirements))
        staging = cache / f".{folder.name}.{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        _install(python, cache / "wheels", staging, requirements)
        (staging / ".complete").write_text(json.dumps({"requirements": requirements}) + "\n")
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)
    return folder


def _install(python: str, wheelhouse: Path, target: Path, requirements: list[str]) -> None:
    """``pip install --target`` from the wheelhouse alone; wheels it lacks are fetched into it first."""
    install = ["install", "--no-index", "--find-links", str(wheelhouse), "--target", str(target)]
    if _pip(python, [*install, *requirements]).returncode == 0:
        return
    shutil.rmtree(target, ignore_errors=True)
    fetched = _pip(python, ["wheel", "--wheel-dir", str(wheelhouse), *requirements])
    if fetched.returncode != 0:
        raise PackageInstallError(f"pip could not fetch {' '.join(requirements)}:\n{fetched.stdout}")
    installed = _pip(python, [*install, *requirements])
    if installed.returncode != 0:
        raise PackageInstallError(f"pip could not install {' '.join(requirements)}:\n{installed.stdout}")


def _pip(python: str, arguments: list[str]) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    return subprocess.run(  # noqa: S603 - the runtime's own interpreter running pip
        [python, "-m", "pip", "--quiet", *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment,
        check=False,
    )


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path``: runtimes starting together install each folder once."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
