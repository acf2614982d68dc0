"""Turn a state's payload into the record fields of its outcome."""

from __future__ import annotations

from typing import Any, Protocol

from common.errors import FileDeleted, failure_reason
from common.model import FileRef, Status, clean_prefix
from common.records import FileRecords
from common.storage import ObjectStore


def ready_fields(state: dict[str, Any]) -> dict[str, Any]:
    """Merge validation, the scan's hash, the parallel analysis branches and the promotion into fields."""
    validation = state["validation"]
    fields: dict[str, Any] = {
        "contentType": validation["contentType"],
        "size": validation["size"],
        "cleanKey": state["promotion"]["key"],
    }
    sha256 = (state.get("scan") or {}).get("sha256")
    if sha256:
        fields["sha256"] = sha256
    for branch in state.get("analysis", []):
        if branch.get("thumbnails"):
            fields["thumbnails"] = branch["thumbnails"]
        metadata = branch.get("metadata")
        if metadata:
            for name in ("width", "height", "pages", "exif"):
                if metadata.get(name) is not None:
                    fields[name] = metadata[name]
    return fields


class UsageCounts(Protocol):
    """The owner's usage the outcome changes; ``common.usage.UsageLedger`` keeps it in the files table."""

    def store(self, owner_id: str, file_id: str, size: int) -> bool: ...

    def release(self, owner_id: str, file_id: str, *, expired_at: int | None = None) -> int: ...


def record_step(
    records: FileRecords, usage: UsageCounts, store: ObjectStore, clean_bucket: str, state: dict[str, Any]
) -> None:
    """Write the state's outcome; when the owner has deleted the file meanwhile, remove what the run stored.

    The API's delete removes the served copies, but a run in flight may promote or make thumbnails after
    that; the run's next record write finds no record, so this is where they go.
    """
    try:
        record(records, state)
        count_usage(usage, state)
    except FileDeleted:
        ref = FileRef.from_state(state)
        store.delete_prefix(clean_bucket, clean_prefix(ref.owner_id, ref.file_id))
        raise


def record(records: FileRecords, state: dict[str, Any]) -> None:
    ref = FileRef.from_state(state)
    outcome = Status(state["outcome"])
    if outcome is Status.PROCESSING:
        records.mark_processing(ref, state.get("executionName", ""))
    elif outcome is Status.READY:
        records.record_outcome(ref, outcome, ready_fields(state))
    elif outcome is Status.QUARANTINED:
        signature = state["scan"].get("signature") or "unknown"
        records.record_outcome(
            ref,
            outcome,
            {
                "quarantineKey": state["quarantine"]["key"],
                "error": {"code": "MALWARE_FOUND", "message": f"Malware detected: {signature}"},
            },
        )
    elif outcome in (Status.REJECTED, Status.FAILED):
        records.record_outcome(ref, outcome, {"error": failure_reason(state["error"])})
    else:
        raise ValueError(f"record cannot write outcome {outcome}")


def count_usage(usage: UsageCounts, state: dict[str, Any]) -> None:
    """After the outcome is written: a READY file's bytes count as stored, any other outcome's hold goes.

    Both are idempotent, so a retry of this step or a replay of the run counts nothing twice; FAILED gives
    the hold back too, and a replay's validate step holds the bytes again if they still fit.
    """
    ref = FileRef.from_state(state)
    outcome = Status(state["outcome"])
    if outcome is Status.READY:
        usage.store(ref.owner_id, ref.file_id, int(state["validation"]["size"]))
    elif outcome is not Status.PROCESSING:
        usage.release(ref.owner_id, ref.file_id)
