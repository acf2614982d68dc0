"""The import graph gate: no cycles between modules or packages, and the layers pyproject.toml names."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from gates import ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    # From functions/, as `make lint` runs it; PYTHONPATH puts the tree's packages before the installed ones.
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join((str(tree), str(tree / "functions")))}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(tree / "pyproject.toml"), "--no-cache"],
        cwd=tree / "functions",
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _copy_of_the_tree(destination: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "node_modules", "*.pyc")
    for folder in ("filepipe", "functions"):
        shutil.copytree(ROOT / folder, destination / folder, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", destination / "pyproject.toml")
    return destination


def test_the_tree_keeps_every_import_contract() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_operator_commands_importing_the_runtime_again_is_refused(tmp_path: Path) -> None:
    tree = _copy_of_the_tree(tmp_path)
    target = tree / "filepipe" / "ops" / "target.py"
    target.write_text(target.read_text() + "\nfrom filepipe.local.server import LocalOptions  # noqa: E402\n")

    result = _lint_imports(tree)

    assert result.returncode != 0
    assert "No import cycles, between modules or between packages, at any depth BROKEN" in result.stdout
    assert "local runtime only through its AWS endpoint and" in result.stdout
    assert "filepipe.ops.target -> filepipe.local.server" in result.stdout


def test_a_function_importing_the_tooling_is_refused(tmp_path: Path) -> None:
    tree = _copy_of_the_tree(tmp_path)
    settings = tree / "functions" / "common" / "settings.py"
    settings.write_text(settings.read_text() + "\nfrom filepipe.template import ROOT  # noqa: E402\n")

    result = _lint_imports(tree)

    assert result.returncode != 0
    assert "The functions run on Lambda without the project's tooling BROKEN" in result.stdout
    assert "common.settings -> filepipe.template" in result.stdout
