"""Benchmarks of filepipe's hot paths against reference tools; sections register here by name."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filepipe.function_code import FUNCTIONS_DIR

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Each module registers its sections on import; a new section is a new module listed here.
# Nice value for measured child processes (negative: ahead of other work; only root may set it).
CHILD_PRIORITY = -10

SECTION_MODULES = ("filepipe.bench.thumbnails", "filepipe.bench.hashing", "filepipe.bench.e2e")


@dataclass(frozen=True)
class Row:
    """One measured line of the report; ``passed`` is None for figures without a target."""

    section: str
    case: str
    ours: str
    reference: str
    ratio: str
    target: str
    passed: bool | None


@dataclass(frozen=True)
class BenchContext:
    workdir: Path  # generated inputs live here for the whole run
    runs: int  # timed repetitions per measurement


SectionRunner = Callable[[BenchContext], list[Row]]


@dataclass(frozen=True)
class Section:
    name: str
    description: str
    run: SectionRunner


SECTIONS: dict[str, Section] = {}


def section(name: str, description: str) -> Callable[[SectionRunner], SectionRunner]:
    """Register a section runner under ``name`` (what ``--only`` selects)."""

    def register(run: SectionRunner) -> SectionRunner:
        SECTIONS[name] = Section(name, description, run)
        return run

    return register


def load_sections() -> dict[str, Section]:
    for module in SECTION_MODULES:
        importlib.import_module(module)
    return SECTIONS


def own_peak_rss_bytes() -> int:
    """This process's peak resident set (VmHWM), counted from its own exec.

    ``ru_maxrss`` is no use for a child: Linux carries the high-water mark of the memory it had before
    exec (a copy of the parent's) into it, so a child of a big parent looks big too.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status (the bench needs Linux)")


def run_child(module: str, arguments: Sequence[str], environment: dict[str, str] | None = None) -> Any:
    """Run ``python -m module`` in a fresh process; returns the JSON document it prints.

    The child runs at raised priority when the bench may grant it (as root), so that unrelated load on
    a shared machine disturbs the measurements less; every engine's child is treated alike.
    """
    child_environment = {**os.environ, **(environment or {})}
    paths = [str(FUNCTIONS_DIR), str(PROJECT_ROOT), child_environment.get("PYTHONPATH", "")]
    child_environment["PYTHONPATH"] = os.pathsep.join(path for path in paths if path)
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", module, *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_environment,
    )
    with contextlib.suppress(PermissionError):
        os.setpriority(os.PRIO_PROCESS, process.pid, CHILD_PRIORITY)
    output, errors = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(arguments)} failed: {errors[-2000:]}")
    return json.loads(output)


def markdown_table(rows: Sequence[Row]) -> str:
    header = ["section", "case", "ours", "reference", "ours/ref", "target", "result"]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    for row in rows:
        result = "info" if row.passed is None else "PASS" if row.passed else "FAIL"
        cells = [row.section, row.case, row.ours, row.reference, row.ratio, row.target, result]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def megabytes(value: int | float) -> str:
    return f"{value / (1024 * 1024):.0f} MB"
