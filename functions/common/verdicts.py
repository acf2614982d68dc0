"""What the verdict store keeps per uploaded object version: the scanner's result and the run awaiting it.

GuardDuty Malware Protection scans each object version on its own and reports it on EventBridge, at
least once and in any order relative to the workflow; the run that needs the verdict waits with a Step
Functions task token. Both meet in one item per (bucket, key, version), so neither can miss the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ResultStatus(StrEnum):
    """``scanResultDetails.scanResultStatus`` of GuardDuty's "Object Scan Result" event."""

    NO_THREATS_FOUND = "NO_THREATS_FOUND"
    THREATS_FOUND = "THREATS_FOUND"
    UNSUPPORTED = "UNSUPPORTED"
    ACCESS_DENIED = "ACCESS_DENIED"
    FAILED = "FAILED"


# Results a new scan of the same bytes can change: GuardDuty's internal error, and a role or key that could
# not read the object (fixed by the operator). Only these give way to a later scan's result; every other
# result is the verdict on those bytes for good.
RESCANNABLE = frozenset({ResultStatus.FAILED.value, ResultStatus.ACCESS_DENIED.value})


@dataclass(frozen=True)
class ObjectVersion:
    """One version of an uploaded object: what a scan result and a waiting run are both about."""

    bucket: str
    key: str
    version: str


@dataclass(frozen=True)
class ScanResult:
    """One scan's result, as one "Object Scan Result" event reported it."""

    event_id: str
    status: str
    threats: tuple[str, ...] = ()
    scanned_at: str | None = None

    @property
    def final(self) -> bool:
        """Whether a later scan could not change it (anything but a rescannable failure)."""
        return self.status not in RESCANNABLE


@dataclass(frozen=True)
class Waiter:
    """The workflow task waiting for the verdict: its token and which run and redrive it belongs to."""

    token: str
    execution: str
    redrive_count: int


@dataclass(frozen=True)
class VerdictState:
    """The item of one object version: its result, the latest task waiting, and who got a rescannable result.

    ``handed_to`` is the task token a rescannable result was given to. That task has failed with it, so the
    next run (a replay that asked GuardDuty for a new scan) must wait for the new scan instead.
    """

    result: ScanResult | None = None
    waiter: Waiter | None = None
    handed_to: str | None = None

    def usable_by(self, token: str) -> bool:
        """Whether the stored result answers the task ``token``: a final one always, a rescannable one only
        for the task it was given to, or for the first that asks when none has had it."""
        if self.result is None:
            return False
        return self.result.final or self.handed_to in (None, token)


@dataclass(frozen=True)
class StoreAnswer:
    """What storing a result did: ``stored`` with the item as it was, or not stored with the item as it is."""

    stored: bool
    state: VerdictState
