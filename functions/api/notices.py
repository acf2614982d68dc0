"""Download notices: a ShareDownloaded event on the bus (the notify function emails it), never in the way."""

from __future__ import annotations

from typing import Any

from common.model import Channel
from notify.handler import SHARE_DOWNLOADED, count_failure
from notify.logic import Delivery, EventPublisher, Result


class DownloadNotices:
    """Publishes what the download logic announces; a failure is logged and counted like a missed notice."""

    def __init__(self, bus: EventPublisher) -> None:
        self._bus = bus

    def __call__(self, detail: dict[str, Any]) -> None:
        try:
            self._bus.publish(SHARE_DOWNLOADED, detail)
        except Exception as error:
            count_failure(Delivery(Channel.EVENT, Result.MISSED, f"{type(error).__name__}: {error}"))
