"""The Lambda functions' code folder, imported by the CLI the way Lambda imports it."""

from __future__ import annotations

import sys
from pathlib import Path

FUNCTIONS_DIR = Path(__file__).resolve().parents[1] / "functions"


def use_function_code() -> None:
    """Put ``functions/`` first on the import path, as Lambda does with the CodeUri folder.

    The CLI then reads records and objects, renders the API's document and sizes clamd with the very
    modules the functions run (``common``, ``api``, ``scan``), so the two cannot disagree.
    """
    if str(FUNCTIONS_DIR) not in sys.path:
        sys.path.insert(0, str(FUNCTIONS_DIR))
