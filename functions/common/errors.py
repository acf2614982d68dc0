"""Domain errors: each class name is exactly an ``ErrorEquals`` value in the state machine."""

from __future__ import annotations

import json
from typing import Any


class FilepipeError(Exception):
    """Base of every domain error; ``code`` is the stable machine-readable reason."""

    code = "Error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        if code is not None:
            self.code = code
        self.message = message
        # Lambda reports str(error) as errorMessage: keep it structured so the record step can read the
        # reason code without interpreting prose.
        super().__init__(json.dumps({"code": self.code, "message": message}))

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class FileRejected(FilepipeError):
    """The file is not acceptable (type, size, corrupt image); final, never retried."""

    code = "FileRejected"


class FileInfected(FilepipeError):
    """The scanner found malware; final, never retried."""

    code = "FileInfected"


class ScannerUnavailable(FilepipeError):
    """clamd cannot be reached or its definitions are missing or stale; retried, then FAILED."""

    code = "ScannerUnavailable"


class ScanIncomplete(FilepipeError):
    """clamd refused to scan the whole file (size limit, error reply): fails closed."""

    code = "ScanIncomplete"


class SourceChanged(FilepipeError):
    """The object version the workflow was started for is no longer the one in the bucket."""

    code = "SourceChanged"


class SourceMissing(FilepipeError):
    """The uploaded object is gone before processing finished."""

    code = "SourceMissing"


class ServiceThrottled(FilepipeError):
    """An AWS service kept throttling after the SDK's own retries; the state machine retries again."""

    code = "ServiceThrottled"


class AlreadyProcessed(FilepipeError):
    """The file already reached a final status; a replay or late duplicate has nothing to do."""

    code = "AlreadyProcessed"


class FileDeleted(FilepipeError):
    """The owner deleted the file while it was processed: the run removes what it stored and ends."""

    code = "FileDeleted"


class StaleWrite(FilepipeError):
    """A conditional record write lost against a newer object version; the run must stop."""

    code = "StaleWrite"


def failure_reason(failure: dict[str, Any]) -> dict[str, str]:
    """``{code, message}`` from a Catch's ``{"Error", "Cause"}``, whatever raised it."""
    error = str(failure.get("Error") or "Error")
    cause = failure.get("Cause")
    try:
        payload = json.loads(cause) if isinstance(cause, str) else cause
    except ValueError:
        payload = None
    if isinstance(payload, dict) and "errorMessage" in payload:
        try:
            inner = json.loads(payload["errorMessage"])
        except (TypeError, ValueError):
            inner = None
        if isinstance(inner, dict) and {"code", "message"} <= inner.keys():
            return {"code": str(inner["code"]), "message": str(inner["message"])[:1000]}
        return {"code": error, "message": str(payload["errorMessage"])[:1000]}
    return {"code": error, "message": str(cause or error)[:1000]}


class InvalidRequest(FilepipeError):
    """The API caller sent something it cannot accept (a field, type or size); answered with a 400."""

    code = "InvalidRequest"


class NotFound(FilepipeError):
    """No such file, upload or share for this caller; another user's id reads exactly the same."""

    code = "NotFound"


class Conflict(FilepipeError):
    """The request is well formed but the file's status does not allow it (e.g. sharing a file not READY)."""

    code = "Conflict"


class RescanInvalid(FilepipeError):
    """The rescan's input is not what the workflow accepts; nothing was scanned."""

    code = "RescanInvalid"


class StoredFileChanged(FilepipeError):
    """The stored original is not the copy of the version the record names: left as it is, reported."""

    code = "StoredFileChanged"
