"""The validate step's quota check: an upload URL can be used until it expires, so admission is not enough."""

from __future__ import annotations

from typing import Protocol

from common.errors import FileRejected
from common.model import FileRef
from common.quota import Hold

# The run's own time limit is 2 hours (statemachines/, TimeoutSeconds): its hold outlives any run.
RUN_HOLD_SECONDS = 3 * 60 * 60


class HoldLedger(Protocol):
    """The holds validation needs; ``common.usage.UsageLedger`` keeps them in the files table."""

    def extend(self, owner_id: str, file_id: str, hold_until: int) -> bool: ...

    def hold(
        self, owner_id: str, file_id: str, size: int, quota_bytes: int, hold_until: int, *, of_record: bool
    ) -> Hold: ...

    def release_expired(self, owner_id: str, now: int) -> int: ...


def hold_for_run(ledger: HoldLedger, ref: FileRef, size: int, quota_bytes: int, now: int) -> None:
    """Keep the upload's bytes held until its run ends, or hold them now; ``FileRejected`` (QUOTA_EXCEEDED)
    when the owner's quota has no room for them.

    The hold taken when the URL was issued normally still stands and is only kept longer. It is gone when
    it expired before the object landed, or when an earlier run of this file ended FAILED and this is a
    replay: then the bytes must fit now, as they would for a new URL. The original stays where it is.
    """
    until = now + RUN_HOLD_SECONDS
    if ledger.extend(ref.owner_id, ref.file_id, until):
        return
    held = ledger.hold(ref.owner_id, ref.file_id, size, quota_bytes, until, of_record=True)
    if held is Hold.OVER_QUOTA and ledger.release_expired(ref.owner_id, now):
        held = ledger.hold(ref.owner_id, ref.file_id, size, quota_bytes, until, of_record=True)
    if held is Hold.OVER_QUOTA:
        raise FileRejected(
            f"the file's {size} bytes do not fit in the owner's storage quota of {quota_bytes} bytes",
            code="QUOTA_EXCEEDED",
        )
