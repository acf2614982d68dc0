"""The replay audit trail: one JSON line per action: who did what to which message, when, with what result."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime
from typing import Any, TextIO


def operator_name() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in some containers
        return "unknown"


class AuditLog:
    """Writes each entry as soon as it happens, so a crash mid-run still leaves the trail up to it."""

    def __init__(self, stream: TextIO, actor: dict[str, str]) -> None:
        self._stream = stream
        self._actor = actor
        self.entries: list[dict[str, Any]] = []

    def record(self, action: str, result: str, **target: Any) -> None:
        entry = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "actor": self._actor,
            "action": action,
            "result": result,
            **{key: value for key, value in target.items() if value is not None},
        }
        self.entries.append(entry)
        self._stream.write(json.dumps(entry, default=str) + "\n")
        self._stream.flush()
