"""Share-link logic: random tokens stored only as hashes, expiry, counted downloads, revocation."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from api.clock import Clock, epoch_seconds, iso
from api.files import CleanLinks, find_file, thumbnail_entries
from api.models import (
    CreateShareRequest,
    DownloadLink,
    PublicShare,
    ShareCreated,
    ShareList,
    ShareState,
    ShareView,
)
from common.errors import Conflict, NotFound
from common.model import Status

if TYPE_CHECKING:
    from common.records import FileRecords
    from common.shares import ShareRecords

TOKEN_BYTES = 32  # 256 random bits; token_urlsafe gives 43 characters
_TOKEN = re.compile(r"[A-Za-z0-9_-]{22,128}")
_SHARE_ID = re.compile(r"[0-9a-f]{64}")
_PREVIEW_SIZE = 256


def new_share_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def share_id_for(token: str) -> str:
    """The token's SHA-256: the only form in which a token is ever stored."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def _share_not_found() -> NotFound:
    # One answer for unknown, expired, revoked and exhausted links, so a token's history never leaks.
    return NotFound("this share link does not exist or is no longer valid", code="ShareNotFound")


def share_state(share: dict[str, Any], now_epoch: int) -> ShareState:
    if share["expiresAtEpoch"] <= now_epoch:
        return "EXPIRED"
    limit = share.get("maxDownloads")
    if limit is not None and share.get("downloads", 0) >= limit:
        return "EXHAUSTED"
    return "ACTIVE"


class OwnerShares:
    """Share management for a file's owner: create, list and revoke links."""

    def __init__(self, records: FileRecords, shares: ShareRecords, web_url: str, clock: Clock) -> None:
        self._records = records
        self._shares = shares
        self._web_url = web_url.rstrip("/")
        self._clock = clock

    def create(self, owner_id: str, file_id: str, request: CreateShareRequest) -> ShareCreated:
        record = find_file(self._records, owner_id, file_id)
        if record.get("status") != Status.READY.value:
            raise Conflict(
                f"only READY files can be shared (this one is {record.get('status')})", code="FileNotReady"
            )
        token = new_share_token()
        share_id = share_id_for(token)
        now = self._clock()
        expires = now + timedelta(seconds=request.expiresInSeconds)
        self._shares.create(
            {
                "shareId": share_id,
                "fileId": file_id,
                "ownerId": owner_id,
                "createdAt": iso(now),
                "expiresAt": iso(expires),
                "expiresAtEpoch": epoch_seconds(expires),
                "maxDownloads": request.maxDownloads,
            }
        )
        return ShareCreated(
            shareId=share_id,
            token=token,
            url=f"{self._web_url}/s/{token}",
            expiresAt=iso(expires),
            maxDownloads=request.maxDownloads,
        )

    def for_file(self, owner_id: str, file_id: str) -> ShareList:
        find_file(self._records, owner_id, file_id)
        now_epoch = epoch_seconds(self._clock())
        return ShareList(
            items=[
                ShareView(
                    shareId=share["shareId"],
                    fileId=share["fileId"],
                    createdAt=share["createdAt"],
                    expiresAt=share["expiresAt"],
                    maxDownloads=share.get("maxDownloads"),
                    downloads=share.get("downloads", 0),
                    state=share_state(share, now_epoch),
                )
                for share in self._shares.list_for_file(file_id)
                if share.get("ownerId") == owner_id
            ]
        )

    def revoke(self, owner_id: str, token_or_share_id: str) -> None:
        """Accepts the token itself or the ``shareId`` from the owner's list (which never shows tokens)."""
        if _SHARE_ID.fullmatch(token_or_share_id):
            share_id = token_or_share_id
        elif _TOKEN.fullmatch(token_or_share_id):
            share_id = share_id_for(token_or_share_id)
        else:
            raise _share_not_found()
        if not self._shares.delete(share_id, owner_id):
            raise _share_not_found()


class PublicShares:
    """What anyone holding a token may do: read the file's metadata, and download it (counted)."""

    def __init__(self, records: FileRecords, shares: ShareRecords, links: CleanLinks, clock: Clock) -> None:
        self._records = records
        self._shares = shares
        self._links = links
        self._clock = clock

    def _usable(self, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The share and its READY file, or the one 404 for every kind of unusable link."""
        if not _TOKEN.fullmatch(token):
            raise _share_not_found()
        share = self._shares.get(share_id_for(token))
        if share is None or share_state(share, epoch_seconds(self._clock())) != "ACTIVE":
            raise _share_not_found()
        try:
            record = find_file(self._records, share["ownerId"], share["fileId"])
        except NotFound:
            raise _share_not_found() from None
        if record.get("status") != Status.READY.value:
            raise _share_not_found()
        return share, record

    def lookup(self, token: str) -> PublicShare:
        """Metadata only: link-preview bots fetch this, so it never counts as a download."""
        share, record = self._usable(token)
        limit = share.get("maxDownloads")
        has_preview = any(entry["size"] == _PREVIEW_SIZE for entry in thumbnail_entries(record))
        return PublicShare(
            name=record["name"],
            size=record["size"],
            contentType=record["contentType"],
            expiresAt=share["expiresAt"],
            thumbnailUrl=self._links.thumbnail(record, _PREVIEW_SIZE) if has_preview else None,
            downloadsRemaining=None if limit is None else max(0, limit - share.get("downloads", 0)),
        )

    def download(self, token: str) -> DownloadLink:
        """Count one download atomically, then sign the original; a link past its limit counts nothing."""
        share, record = self._usable(token)
        if self._shares.count_download(share["shareId"], epoch_seconds(self._clock())) is None:
            raise _share_not_found()
        return DownloadLink(url=self._links.original(record), expiresAt=self._links.expires_at())
