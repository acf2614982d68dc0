"""The running `filepipe local`'s state file: its endpoints, credentials, demo login, stack and console.

The runtime writes it when it is ready and removes it when it stops; the operator commands (`filepipe.ops`)
and the CLI read it to find the runtime. It lives apart from the runtime so that reading it imports nothing of
the runtime.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from filepipe.template import ROOT

STATE_FILE = "runtime.json"
DEFAULT_STATE_DIR = ROOT / ".filepipe" / "local"
# The functions and anything that signs an S3 POST locally use these.
ACCESS_KEY_ID = "AKIAFILEPIPELOCAL000"
SECRET_ACCESS_KEY = "filepipe-local-secret-access-key"  # noqa: S105 - a fixed local-only credential
DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "Demo-Password-123"  # noqa: S105 - printed at start so a developer can sign in


def state_path(state_dir: Path | None = None) -> Path:
    return (state_dir or DEFAULT_STATE_DIR) / STATE_FILE


def write_state(state_dir: Path, state: dict[str, Any]) -> None:
    """Record the runtime for this process; readable by this user only, as it holds the console's token."""
    path = state_path(state_dir)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(json.dumps({"pid": os.getpid(), **state}, indent=2, default=str))


def read_state(state_dir: Path | None = None) -> dict[str, Any] | None:
    """The running runtime's state (written at start, removed at stop), or None."""
    try:
        state: dict[str, Any] = json.loads(state_path(state_dir).read_text())
    except (OSError, ValueError):
        return None
    return state


def remove_state(state_dir: Path) -> None:
    """Remove the state file if this process wrote it (another runtime may have started since)."""
    state = read_state(state_dir)
    if state is not None and state.get("pid") == os.getpid():
        state_path(state_dir).unlink(missing_ok=True)
