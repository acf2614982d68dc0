"""Tell a share's owner their link was downloaded: an email per ShareDownloaded event, once per download.

The event itself is already on the bus (the share function published it); this sends the email that goes
with it, when a sender is configured and the owner has an address. As for processing outcomes, the email
is claimed before it is sent, on the download's log entry, so a redelivered event sends nothing twice.
"""

from __future__ import annotations

from typing import Any, Protocol

from common.model import Channel
from notify.logic import Delivery, EmailRefused, Mailer, Result


class DownloadRecords(Protocol):
    def get(self, share_id: str) -> dict[str, Any] | None: ...

    def claim_download_email(self, share_id: str, download: int) -> bool: ...

    def release_download_email(self, share_id: str, download: int) -> None: ...


def compose(detail: dict[str, Any]) -> tuple[str, str]:
    name = str(detail.get("fileName") or detail.get("fileId"))
    client = f"{detail.get('browser', 'Unknown')} on {detail.get('platform', 'Unknown')}"
    if detail.get("country"):
        client += f", from {detail['country']}"
    lines = [
        f"File: {name}",
        f"Downloaded: {detail.get('at')} (UTC)",
        f"Download number {detail.get('download')} of your link",
        f"By: {client}",
        "",
        "You asked to be told when this link is downloaded. Change that, or see every download, in the "
        "link's settings in filepipe.",
    ]
    return f"Your shared file {name} was downloaded", "\n".join(lines) + "\n"


def notify_download(detail: dict[str, Any], shares: DownloadRecords, mailer: Mailer | None) -> Delivery:
    """Email the owner about one download, if the link still asks for it.

    Raises whatever the mailer raised other than a refusal (the invocation is retried; the claim is
    given back first), so a throttled send is tried again.
    """
    share_id = str(detail["shareId"])
    download = int(detail["download"])
    share = shares.get(share_id)
    wanted = share.get("notifyOn") if share else None
    if wanted is None or (wanted == "FIRST" and download != 1):
        return Delivery(Channel.EMAIL, Result.OFF, "the link no longer asks to be told")
    if mailer is None:
        return Delivery(Channel.EMAIL, Result.OFF, "no sender is configured")
    to = share.get("ownerEmail") if share else None
    if not to:
        return Delivery(Channel.EMAIL, Result.OFF, "the owner has no email address")
    if not shares.claim_download_email(share_id, download):
        return Delivery(Channel.EMAIL, Result.ALREADY_SENT)
    subject, body = compose(detail)
    try:
        mailer.send(str(to), subject, body)
    except EmailRefused as refusal:
        return Delivery(Channel.EMAIL, Result.REFUSED, str(refusal))
    except Exception:
        shares.release_download_email(share_id, download)
        raise
    return Delivery(Channel.EMAIL, Result.SENT)
