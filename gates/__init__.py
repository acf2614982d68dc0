"""Offline gates that refuse what AWS would refuse: template scan, ASL validation and the Lambda build."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GATES_DIR = ROOT / "gates"
BUILD_DIR = ROOT / "build" / "gates"
# Tools whose dependencies clash with the dev venv's (checkov, SAM CLI) live in venvs of their own.
TOOLS_DIR = Path(sys.prefix) / "tools"


class GateError(Exception):
    """A gate could not run at all (a tool or an input is missing); not the same as a gate that refused."""


def tool(venv: str, executable: str) -> Path:
    """The executable of a tool venv that `make install` creates from gates/requirements/<venv>.txt."""
    path = TOOLS_DIR / venv / "bin" / executable
    if not path.is_file():
        raise GateError(f"{path} is missing: `make install` builds it from gates/requirements/{venv}.txt")
    return path


def run(
    command: list[str], timeout: float = 900, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run one of the gates' tools and capture its output; the caller judges the exit status."""
    return subprocess.run(  # noqa: S603 - the gates' own tools with arguments they build
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
