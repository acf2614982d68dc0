"""Limits a caller reached for now, answered with a 429 whose Retry-After says when they lift."""

from __future__ import annotations

from common.errors import ServiceThrottled


class RetryLater(ServiceThrottled):
    """``retry_after`` is the seconds until the limit lifts; the message rounds it up to whole minutes."""

    def __init__(self, reason: str, retry_after: int) -> None:
        minutes = max(1, -(-retry_after // 60))
        super().__init__(f"{reason}; try again in {minutes} minute{'s' if minutes > 1 else ''}")
        self.retry_after = retry_after
