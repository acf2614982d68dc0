"""Quota logic: each owner's storage limit and hourly upload limit, checked as an upload URL is issued."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from api.clock import Clock, epoch_seconds, iso
from api.models import UsageView
from api.throttles import RetryLater
from common.errors import Conflict
from common.quota import Hold, Usage

WINDOW_SECONDS = 60 * 60
# A hold outlives its upload URL by this much: the object may land just before the URL expires, and its
# run's validate step, which finds the hold and keeps it for the run, may start a little later.
HOLD_GRACE_SECONDS = 60 * 60


@dataclass(frozen=True)
class QuotaRules:
    storage_bytes: int
    uploads_per_hour: int


class QuotaExceeded(Conflict):
    """The owner's stored and in-flight files leave no room for this one."""

    code = "QuotaExceeded"


class UploadRateExceeded(RetryLater):
    """The owner has been issued the hour's upload URLs; ``retry_after`` seconds until the next hour."""

    code = "UploadRateExceeded"

    def __init__(self, limit: int, retry_after: int) -> None:
        super().__init__(f"at most {limit} uploads an hour", retry_after)


class Ledger(Protocol):
    """What quotas need of storage; ``common.usage.UsageLedger`` keeps it in the files table."""

    def usage(self, owner_id: str) -> Usage: ...

    def hold(
        self, owner_id: str, file_id: str, size: int, quota_bytes: int, hold_until: int, *, of_record: bool
    ) -> Hold: ...

    def release(self, owner_id: str, file_id: str, *, expired_at: int | None = None) -> int: ...

    def release_expired(self, owner_id: str, now: int) -> int: ...

    def unstore(self, owner_id: str, file_id: str) -> int: ...

    def count_upload(self, owner_id: str, window_start: int, window_end: int, limit: int) -> bool: ...

    def uploads_counted(self, owner_id: str, window_start: int) -> int: ...


class Quotas:
    """Admits an upload only within the owner's quotas: the owner's, whoever asks for the URL, so uploads
    through a request link count against the link owner's."""

    def __init__(self, ledger: Ledger, rules: QuotaRules, clock: Clock) -> None:
        self._ledger = ledger
        self._rules = rules
        self._clock = clock

    def _window(self) -> tuple[int, int]:
        now = epoch_seconds(self._clock())
        start = now - now % WINDOW_SECONDS
        return now, start

    def admit(self, owner_id: str, file_id: str, size: int, url_seconds: int) -> None:
        """Hold the file's bytes, then count the upload in this hour; neither, and an error, when either
        limit is reached. Bytes first, so a refused upload never uses up one of the hour's uploads."""
        now, window = self._window()
        until = now + url_seconds + HOLD_GRACE_SECONDS
        quota = self._rules.storage_bytes
        held = self._ledger.hold(owner_id, file_id, size, quota, until, of_record=False)
        if held is Hold.OVER_QUOTA and self._ledger.release_expired(owner_id, now):
            held = self._ledger.hold(owner_id, file_id, size, quota, until, of_record=False)
        if held is Hold.OVER_QUOTA:
            used = self._ledger.usage(owner_id).used_bytes
            raise QuotaExceeded(
                f"the file needs {size} bytes but only {max(0, quota - used)} of your {quota} bytes of "
                "storage are free; delete files to make room"
            )
        limit = self._rules.uploads_per_hour
        if not self._ledger.count_upload(owner_id, window, window + WINDOW_SECONDS, limit):
            self._ledger.release(owner_id, file_id)
            raise UploadRateExceeded(limit, window + WINDOW_SECONDS - now)

    def release(self, owner_id: str, file_id: str) -> None:
        """The file no longer counts: its hold is given back, or its stored bytes are (both idempotent)."""
        self._ledger.release(owner_id, file_id)
        self._ledger.unstore(owner_id, file_id)

    def usage(self, owner_id: str) -> UsageView:
        now, window = self._window()
        self._ledger.release_expired(owner_id, now)
        usage = self._ledger.usage(owner_id)
        return UsageView(
            usedBytes=usage.used_bytes,
            storedBytes=usage.stored_bytes,
            reservedBytes=usage.reserved_bytes,
            quotaBytes=self._rules.storage_bytes,
            uploadsThisHour=self._ledger.uploads_counted(owner_id, window),
            uploadsPerHour=self._rules.uploads_per_hour,
            hourResetsAt=iso(datetime.fromtimestamp(window + WINDOW_SECONDS, UTC)),
        )
