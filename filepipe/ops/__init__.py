"""Operator commands: inspect ProcessUpload executions and replay failed ones from the dead-letter queues."""

from __future__ import annotations

import sys
from pathlib import Path

FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"

# Replay reads file records and ingest objects through the functions' own adapters (functions/common),
# so the CLI and the workflow can never disagree on the key layout. Lambda puts that folder on the path;
# the CLI does the same (appended, so nothing installed is shadowed).
if FUNCTIONS_DIR.is_dir() and str(FUNCTIONS_DIR) not in sys.path:
    sys.path.append(str(FUNCTIONS_DIR))
