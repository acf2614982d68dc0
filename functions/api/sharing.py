"""Share-link logic: random tokens stored only as hashes, passwords, expiry, counted and logged downloads."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from api.attempts import ATTEMPTS_PER_CLIENT as ATTEMPTS_PER_CLIENT
from api.attempts import ATTEMPTS_PER_LINK as ATTEMPTS_PER_LINK
from api.attempts import TooManyAttempts as TooManyAttempts
from api.attempts import admit
from api.clock import Clock, epoch_seconds, iso
from api.files import CleanLinks, find_file, thumbnail_entries
from api.models import (
    MAX_SHARE_SECONDS,
    CreateFilesShareRequest,
    CreateShareRequest,
    DownloadLink,
    DownloadShareRequest,
    LockedShare,
    PublicShare,
    ShareCreated,
    SharedFile,
    ShareDownload,
    ShareDownloadLog,
    ShareList,
    ShareState,
    ShareView,
    UpdateShareRequest,
)
from api.passwords import hash_password, verify_password
from api.visitors import Visitor
from common.errors import Conflict, InvalidRequest, NotFound
from common.model import SHARE_LOG_SLOTS, Status, share_file_ids
from common.observability import logger

if TYPE_CHECKING:
    from common.records import FileRecords
    from common.shares import ShareRecords

TOKEN_BYTES = 32  # 256 random bits; token_urlsafe gives 43 characters
_TOKEN = re.compile(r"[A-Za-z0-9_-]{22,128}")
_SHARE_ID = re.compile(r"[0-9a-f]{64}")
_PREVIEW_SIZE = 256
LOG_DAYS = 90
UPDATABLE = ("expiresInSeconds", "maxDownloads", "password", "slidingExpirySeconds", "notifyOn")

Announce = Callable[[dict[str, Any]], None]


def new_share_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def share_id_for(token: str) -> str:
    """The token's SHA-256: the only form in which a token is ever stored."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def _share_not_found() -> NotFound:
    # One answer for unknown, expired, revoked, exhausted and wrong-password links, so a token's
    # history and its password never leak.
    return NotFound("this share link does not exist or is no longer valid", code="ShareNotFound")


def _share_id(token_or_share_id: str) -> str:
    """The owner names a share by its token or by the ``shareId`` of their list (which shows no tokens)."""
    if _SHARE_ID.fullmatch(token_or_share_id):
        return token_or_share_id
    if _TOKEN.fullmatch(token_or_share_id):
        return share_id_for(token_or_share_id)
    raise _share_not_found()


def share_state(share: dict[str, Any], now_epoch: int) -> ShareState:
    if share["expiresAtEpoch"] <= now_epoch:
        return "EXPIRED"
    limit = share.get("maxDownloads")
    if limit is not None and share.get("downloads", 0) >= limit:
        return "EXHAUSTED"
    return "ACTIVE"


def share_view(share: dict[str, Any], now_epoch: int) -> ShareView:
    sliding = share.get("slidingExpirySeconds")
    file_ids = share_file_ids(share)
    return ShareView(
        shareId=share["shareId"],
        fileId=file_ids[0],
        fileIds=file_ids,
        createdAt=share["createdAt"],
        expiresAt=share["expiresAt"],
        maxDownloads=share.get("maxDownloads"),
        downloads=share.get("downloads", 0),
        state=share_state(share, now_epoch),
        passwordProtected=bool(share.get("passwordHash")),
        slidingExpirySeconds=sliding,
        latestExpiresAt=iso(datetime.fromtimestamp(share["expiryCapEpoch"], UTC))
        if sliding and share.get("expiryCapEpoch")
        else None,
        notifyOn=share.get("notifyOn"),
    )


def _expiry_cap(now: datetime, expires_epoch: int, sliding: int | None) -> int:
    """The latest the link may live: its expiry, or with sliding expiry 30 days after it was set."""
    return epoch_seconds(now + timedelta(seconds=MAX_SHARE_SECONDS)) if sliding else expires_epoch


class OwnerShares:
    """Share management for a file's owner: create, list, change and revoke links, read their logs."""

    def __init__(
        self,
        records: FileRecords,
        shares: ShareRecords,
        web_url: str,
        clock: Clock,
        hasher: Callable[[str], str] = hash_password,
    ) -> None:
        self._records = records
        self._shares = shares
        self._web_url = web_url.rstrip("/")
        self._clock = clock
        self._hash = hasher

    def create(
        self, owner_id: str, file_id: str, request: CreateShareRequest, owner_email: str | None = None
    ) -> ShareCreated:
        return self._create(owner_id, [file_id], request, owner_email)

    def create_for_files(
        self, owner_id: str, request: CreateFilesShareRequest, owner_email: str | None = None
    ) -> ShareCreated:
        return self._create(owner_id, request.fileIds, request, owner_email)

    def _create(
        self, owner_id: str, file_ids: list[str], request: CreateShareRequest, owner_email: str | None
    ) -> ShareCreated:
        for file_id in file_ids:
            record = find_file(self._records, owner_id, file_id)
            if record.get("status") != Status.READY.value:
                raise Conflict(
                    f"only READY files can be shared ({record['name']} is {record.get('status')})",
                    code="FileNotReady",
                )
        token = new_share_token()
        share_id = share_id_for(token)
        now = self._clock()
        expires = now + timedelta(seconds=request.expiresInSeconds)
        sliding = request.slidingExpirySeconds
        self._shares.create(
            {
                "shareId": share_id,
                "fileIds": file_ids,
                "ownerId": owner_id,
                "createdAt": iso(now),
                "expiresAt": iso(expires),
                "expiresAtEpoch": epoch_seconds(expires),
                "expiryCapEpoch": _expiry_cap(now, epoch_seconds(expires), sliding),
                "maxDownloads": request.maxDownloads,
                "slidingExpirySeconds": sliding,
                "passwordHash": self._hash(request.password) if request.password is not None else None,
                "notifyOn": request.notifyOn,
                "ownerEmail": owner_email if request.notifyOn else None,
            }
        )
        return ShareCreated(
            shareId=share_id,
            token=token,
            url=f"{self._web_url}/s/{token}",
            expiresAt=iso(expires),
            maxDownloads=request.maxDownloads,
            fileIds=file_ids,
            passwordProtected=request.password is not None,
            slidingExpirySeconds=sliding,
            notifyOn=request.notifyOn,
        )

    def for_file(self, owner_id: str, file_id: str) -> ShareList:
        find_file(self._records, owner_id, file_id)
        now_epoch = epoch_seconds(self._clock())
        return ShareList(
            items=[
                share_view(share, now_epoch)
                for share in self._shares.list_for_file(file_id)
                if share.get("ownerId") == owner_id
            ]
        )

    def _owned(self, owner_id: str, token_or_share_id: str) -> dict[str, Any]:
        share = self._shares.get(_share_id(token_or_share_id))
        if share is None or share.get("ownerId") != owner_id:
            raise _share_not_found()
        return share

    def update(
        self,
        owner_id: str,
        token_or_share_id: str,
        request: UpdateShareRequest,
        owner_email: str | None = None,
    ) -> ShareView:
        """Change what the request names; expiry counts from now, ``null`` removes a limit or setting."""
        sent = request.model_fields_set
        if not sent:
            raise InvalidRequest(f"send at least one of {', '.join(UPDATABLE)}", code="NothingToChange")
        if "expiresInSeconds" in sent and request.expiresInSeconds is None:
            raise InvalidRequest("expiresInSeconds: a link always expires", code="InvalidExpiry")
        share = self._owned(owner_id, token_or_share_id)
        now = self._clock()
        changes: dict[str, Any] = {}
        removals: list[str] = []

        def put(name: str, value: Any) -> None:
            if value is None:
                removals.append(name)
            else:
                changes[name] = value

        expires_epoch = int(share["expiresAtEpoch"])
        if request.expiresInSeconds is not None:
            expires = now + timedelta(seconds=request.expiresInSeconds)
            expires_epoch = epoch_seconds(expires)
            changes.update(expiresAt=iso(expires), expiresAtEpoch=expires_epoch)
        if {"expiresInSeconds", "slidingExpirySeconds"} & sent:
            sliding = (
                request.slidingExpirySeconds
                if "slidingExpirySeconds" in sent
                else share.get("slidingExpirySeconds")
            )
            put("slidingExpirySeconds", sliding)
            changes["expiryCapEpoch"] = _expiry_cap(now, expires_epoch, sliding)
        if "maxDownloads" in sent:
            put("maxDownloads", request.maxDownloads)
        if "password" in sent:
            put("passwordHash", self._hash(request.password) if request.password is not None else None)
        if "notifyOn" in sent:
            put("notifyOn", request.notifyOn)
            put("ownerEmail", owner_email if request.notifyOn else None)
        updated = self._shares.update(share["shareId"], owner_id, changes, removals)
        if updated is None:
            raise _share_not_found()
        if "expiryCapEpoch" in changes:
            self._shares.expire_members_at(updated, changes["expiryCapEpoch"])
        return share_view(updated, epoch_seconds(now))

    def downloads(self, owner_id: str, token_or_share_id: str) -> ShareDownloadLog:
        share = self._owned(owner_id, token_or_share_id)
        entries = self._shares.download_log(share["shareId"], epoch_seconds(self._clock()))
        return ShareDownloadLog(
            items=[
                ShareDownload(
                    download=entry["download"],
                    at=entry["at"],
                    fileId=entry["fileId"],
                    fileName=entry.get("fileName", ""),
                    browser=entry.get("browser", "Unknown"),
                    platform=entry.get("platform", "Unknown"),
                    country=entry.get("country"),
                )
                for entry in entries
            ],
            downloads=share.get("downloads", 0),
            kept=SHARE_LOG_SLOTS,
            keptDays=LOG_DAYS,
        )

    def revoke(self, owner_id: str, token_or_share_id: str) -> None:
        share_id = _share_id(token_or_share_id)
        if not self._shares.delete(share_id, owner_id):
            raise _share_not_found()
        self._shares.purge(share_id)


class PublicShares:
    """What anyone holding a token may do: read the files' metadata, and download them (counted, logged)."""

    def __init__(
        self,
        records: FileRecords,
        shares: ShareRecords,
        links: CleanLinks,
        clock: Clock,
        announce: Announce | None = None,
        verifier: Callable[[str, str], bool] = verify_password,
    ) -> None:
        self._records = records
        self._shares = shares
        self._links = links
        self._clock = clock
        self._announce = announce
        self._verify = verifier

    def _usable(self, token: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The share and its READY files in order, or the one 404 for every kind of unusable link."""
        if not _TOKEN.fullmatch(token):
            raise _share_not_found()
        share = self._shares.get(share_id_for(token))
        if share is None or share_state(share, epoch_seconds(self._clock())) != "ACTIVE":
            raise _share_not_found()
        files = []
        for file_id in share_file_ids(share):
            try:
                record = find_file(self._records, share["ownerId"], file_id)
            except NotFound:
                continue
            if record.get("status") == Status.READY.value:
                files.append(record)
        if not files:
            raise _share_not_found()
        return share, files

    def _admit(self, share: dict[str, Any], password: str | None, visitor: Visitor) -> None:
        """Let a visitor with the right password through; a wrong or missing one reads as an unknown link."""
        stored = share.get("passwordHash")
        now_epoch = epoch_seconds(self._clock())
        admit(
            self._shares,
            share["shareId"],
            stored,
            password,
            visitor,
            now_epoch,
            self._verify,
            _share_not_found,
        )

    def _public(self, share: dict[str, Any], files: list[dict[str, Any]]) -> PublicShare:
        shared = [
            SharedFile(
                fileId=record["fileId"],
                name=record["name"],
                size=record["size"],
                contentType=record["contentType"],
                thumbnailUrl=self._links.thumbnail(record, _PREVIEW_SIZE)
                if any(entry["size"] == _PREVIEW_SIZE for entry in thumbnail_entries(record))
                else None,
            )
            for record in files
        ]
        first = shared[0]
        limit = share.get("maxDownloads")
        return PublicShare(
            name=first.name,
            size=first.size,
            contentType=first.contentType,
            expiresAt=share["expiresAt"],
            thumbnailUrl=first.thumbnailUrl,
            downloadsRemaining=None if limit is None else max(0, limit - share.get("downloads", 0)),
            files=shared,
        )

    def lookup(self, token: str) -> PublicShare | LockedShare:
        """Metadata only: link-preview bots fetch this, so it never counts as a download. A link with a
        password says only that it has one."""
        share, files = self._usable(token)
        if share.get("passwordHash"):
            return LockedShare()
        return self._public(share, files)

    def unlock(self, token: str, password: str, visitor: Visitor) -> PublicShare:
        """What lookup shows of an open link, for a visitor who knows the link's password."""
        share, files = self._usable(token)
        self._admit(share, password, visitor)
        return self._public(share, files)

    def download(
        self, token: str, request: DownloadShareRequest | None = None, visitor: Visitor | None = None
    ) -> DownloadLink:
        """Count one download atomically, then sign the file; a link past its limit counts nothing."""
        request = request or DownloadShareRequest()
        visitor = visitor or Visitor()
        share, files = self._usable(token)
        self._admit(share, request.password, visitor)
        if request.fileId is not None:
            record = next((file for file in files if file["fileId"] == request.fileId), None)
            if record is None:
                raise NotFound(
                    "this file is not (or no longer) in the shared link", code="SharedFileNotFound"
                )
        elif len(files) == 1:
            record = files[0]
        else:
            raise InvalidRequest("this link holds several files: name one with fileId", code="FileIdRequired")
        now = self._clock()
        counted = self._shares.count_download(share["shareId"], epoch_seconds(now))
        if counted is None:
            raise _share_not_found()
        try:
            self._after_download(counted, record, visitor, now)
        except Exception:  # the visitor gets the file even if the log, sliding expiry or notice failed
            logger.exception("download bookkeeping failed", extra={"shareId": share["shareId"]})
        return DownloadLink(url=self._links.original(record), expiresAt=self._links.expires_at())

    def _after_download(
        self, share: dict[str, Any], record: dict[str, Any], visitor: Visitor, now: datetime
    ) -> None:
        download = int(share["downloads"])
        entry = {
            "download": download,
            "at": iso(now),
            "fileId": record["fileId"],
            "fileName": record["name"],
            "browser": visitor.browser,
            "platform": visitor.platform,
            "country": visitor.country_code,
        }
        self._shares.log_download(share["shareId"], entry, epoch_seconds(now + timedelta(days=LOG_DAYS)))
        sliding = share.get("slidingExpirySeconds")
        if sliding:
            slid = min(epoch_seconds(now + timedelta(seconds=sliding)), int(share["expiryCapEpoch"]))
            if slid > int(share["expiresAtEpoch"]):
                self._shares.slide_expiry(
                    share["shareId"], int(sliding), slid, iso(datetime.fromtimestamp(slid, UTC))
                )
        notify = share.get("notifyOn")
        if self._announce and (notify == "EVERY" or (notify == "FIRST" and download == 1)):
            self._announce(
                {"shareId": share["shareId"], "ownerId": share["ownerId"], "notifyOn": notify, **entry}
            )
