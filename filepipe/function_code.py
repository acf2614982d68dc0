"""The Lambda functions' code folder, whose packages the CLI imports by their own names, as Lambda does.

The project installs each package of ``functions/`` (the CodeUri folder) under its top-level name
(pyproject.toml), so the CLI reads records and objects, renders the API's document and sizes clamd with the
very modules the functions run (``common``, ``api``, ``scan``), and the two cannot disagree.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

FUNCTIONS_DIR = Path(__file__).resolve().parents[1] / "functions"


def use_function_code() -> None:
    """Make sure ``common`` and its siblings import from ``functions/``; say how to fix it if they do not."""
    spec = find_spec("common")
    origin = Path(spec.origin).resolve() if spec is not None and spec.origin else None
    if origin is None or not origin.is_relative_to(FUNCTIONS_DIR):
        raise ImportError(
            f"the functions' packages are not installed from {FUNCTIONS_DIR} (found {origin}):"
            " reinstall the project (`make install`, or `pip install -e .`)"
        )
