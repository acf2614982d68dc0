"""What the usage ledger answers, shared by the API and the workflow without importing boto3."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Hold(StrEnum):
    """What asking to hold bytes for a file came to."""

    HELD = "HELD"  # held now, or already held by an earlier attempt
    OVER_QUOTA = "OVER_QUOTA"  # the owner's stored and held bytes leave no room
    NOT_NEEDED = "NOT_NEEDED"  # the file already counts as stored, or its record is gone


@dataclass(frozen=True)
class Usage:
    stored_bytes: int
    reserved_bytes: int

    @property
    def used_bytes(self) -> int:
        return self.stored_bytes + self.reserved_bytes
