"""Request-link logic: upload-only links whose guests send files into the owner's account, within limits."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from api.attempts import admit
from api.clock import Clock, epoch_seconds, iso
from api.models import (
    CompleteUploadRequest,
    CreateRequestLinkRequest,
    CreateUploadRequest,
    FileError,
    GuestCompleteUploadRequest,
    GuestMultipartPlan,
    GuestSignPartsRequest,
    GuestStatusRequest,
    GuestUpload,
    GuestUploadList,
    GuestUploadReceipt,
    GuestUploadRequest,
    GuestUploadTicket,
    LockedRequestLink,
    PublicRequestLink,
    RequestLinkCreated,
    RequestLinkList,
    RequestLinkView,
    RequestState,
    SignedParts,
    SignPartsRequest,
    UpdateRequestLinkRequest,
    UploadProgress,
    UploadTicket,
)
from api.passwords import hash_password, verify_password
from api.quotas import QuotaExceeded, UploadRateExceeded
from api.sharing import new_share_token, share_id_for
from api.throttles import RetryLater
from api.visitors import Visitor
from common.errors import Conflict, InvalidRequest, NotFound
from common.model import FILE_ID_PATTERN, Status

if TYPE_CHECKING:
    from api.uploads import Uploads
    from common.records import FileRecords
    from common.request_links import RequestLinks

_TOKEN = re.compile(r"[A-Za-z0-9_-]{22,128}")
_REQUEST_ID = re.compile(r"[0-9a-f]{64}")
# How long the owner still sees a closed link in their list before the table's TTL removes it.
KEPT_AFTER_CLOSING = timedelta(days=30)


class GuestUploadsThrottled(RetryLater):
    """The link's owner has been issued the hour's uploads; guests hear when to try again, not the limit."""

    code = "UploadRateExceeded"

    def __init__(self, retry_after: int) -> None:
        super().__init__("this link takes no more uploads now", retry_after)


REQUEST_UPDATABLE = ("expiresInSeconds", "maxFiles", "maxBytes", "password", "note")
_UPDATE_ATTEMPTS = 3


def _request_not_found() -> NotFound:
    # One answer for unknown, expired, revoked, used-up and wrong-password links, and for receipts that
    # do not match, so a link's history and its password never leak.
    return NotFound("this request link does not exist or is no longer valid", code="RequestNotFound")


def receipt_hash(receipt: str) -> str:
    """The only form in which a guest's receipt is kept, on the file's record."""
    return hashlib.sha256(receipt.encode("ascii")).hexdigest()


def request_state(link: dict[str, Any], now_epoch: int) -> RequestState:
    if int(link["closesAtEpoch"]) <= now_epoch:
        return "EXPIRED"
    if int(link["filesLeft"]) <= 0 or int(link["bytesLeft"]) <= 0:
        return "USED_UP"
    return "ACTIVE"


def request_view(link: dict[str, Any], now_epoch: int) -> RequestLinkView:
    return RequestLinkView(
        requestId=link["requestId"],
        createdAt=link["createdAt"],
        expiresAt=link["expiresAt"],
        maxFiles=link["maxFiles"],
        maxBytes=link["maxBytes"],
        filesReceived=int(link["maxFiles"]) - int(link["filesLeft"]),
        bytesReceived=int(link["maxBytes"]) - int(link["bytesLeft"]),
        state=request_state(link, now_epoch),
        passwordProtected=bool(link.get("passwordHash")),
        note=link.get("note"),
    )


def _request_id(token_or_request_id: str) -> str:
    """The owner names a link by its token or by the ``requestId`` of their list (which shows no tokens)."""
    if _REQUEST_ID.fullmatch(token_or_request_id):
        return token_or_request_id
    if _TOKEN.fullmatch(token_or_request_id):
        return share_id_for(token_or_request_id)
    raise _request_not_found()


class OwnerRequests:
    """Request links for their owner: create, list (with what each received), change expiry, revoke."""

    def __init__(
        self,
        links: RequestLinks,
        web_url: str,
        clock: Clock,
        hasher: Callable[[str], str] = hash_password,
    ) -> None:
        self._links = links
        self._web_url = web_url.rstrip("/")
        self._clock = clock
        self._hash = hasher

    def create(
        self, owner_id: str, request: CreateRequestLinkRequest, owner_email: str | None = None
    ) -> RequestLinkCreated:
        token = new_share_token()
        request_id = share_id_for(token)
        now = self._clock()
        expires = now + timedelta(seconds=request.expiresInSeconds)
        self._links.create(
            {
                "requestId": request_id,
                "ownerId": owner_id,
                "ownerEmail": owner_email,
                "createdAt": iso(now),
                "expiresAt": iso(expires),
                "closesAtEpoch": epoch_seconds(expires),
                "expiresAtEpoch": epoch_seconds(expires + KEPT_AFTER_CLOSING),
                "maxFiles": request.maxFiles,
                "maxBytes": request.maxBytes,
                "passwordHash": self._hash(request.password) if request.password is not None else None,
                "note": request.note,
            }
        )
        return RequestLinkCreated(
            requestId=request_id,
            token=token,
            url=f"{self._web_url}/r/{token}",
            expiresAt=iso(expires),
            maxFiles=request.maxFiles,
            maxBytes=request.maxBytes,
            passwordProtected=request.password is not None,
            note=request.note,
        )

    def list(self, owner_id: str) -> RequestLinkList:
        now_epoch = epoch_seconds(self._clock())
        return RequestLinkList(
            items=[request_view(link, now_epoch) for link in self._links.list_for_owner(owner_id)]
        )

    def update(
        self, owner_id: str, token_or_request_id: str, request: UpdateRequestLinkRequest
    ) -> RequestLinkView:
        """Change what the request names: a new expiry counts from now (and reopens an expired link), new
        limits count what the link already received, ``null`` removes the password or the note."""
        sent = request.model_fields_set
        if not sent:
            raise InvalidRequest(
                f"send at least one of {', '.join(REQUEST_UPDATABLE)}", code="NothingToChange"
            )
        for name, code in (
            ("expiresInSeconds", "InvalidExpiry"),
            ("maxFiles", "InvalidMaxFiles"),
            ("maxBytes", "InvalidMaxBytes"),
        ):
            if name in sent and getattr(request, name) is None:
                raise InvalidRequest(f"{name}: a request link always has one", code=code)
        request_id = _request_id(token_or_request_id)
        now = self._clock()
        changes: dict[str, Any] = {}
        removals: list[str] = []
        if request.expiresInSeconds is not None:
            expires = now + timedelta(seconds=request.expiresInSeconds)
            changes.update(
                expiresAt=iso(expires),
                closesAtEpoch=epoch_seconds(expires),
                expiresAtEpoch=epoch_seconds(expires + KEPT_AFTER_CLOSING),
            )
        for name in ("maxFiles", "maxBytes"):
            if name in sent:
                changes[name] = getattr(request, name)
        if "password" in sent:
            if request.password is None:
                removals.append("passwordHash")
            else:
                changes["passwordHash"] = self._hash(request.password)
        if "note" in sent:
            if request.note is None:
                removals.append("note")
            else:
                changes["note"] = request.note
        # Another change of the limits between the read and the write makes the write refuse: read again.
        for _ in range(_UPDATE_ATTEMPTS):
            link = self._links.get(request_id)
            if link is None or link.get("ownerId") != owner_id:
                raise _request_not_found()
            limits = {name: int(link[name]) for name in ("maxFiles", "maxBytes")}
            updated = self._links.update(request_id, owner_id, changes, removals, limits)
            if updated is not None:
                return request_view(updated, epoch_seconds(now))
        raise Conflict("the link was changed meanwhile; try again", code="ChangedMeanwhile")

    def revoke(self, owner_id: str, token_or_request_id: str) -> None:
        """The link stops working at once; files it already brought stay the owner's, marked with it."""
        if not self._links.delete(_request_id(token_or_request_id), owner_id):
            raise _request_not_found()


class GuestUploads:
    """What anyone holding a request link's token may do: see its note and limits, upload (as its owner,
    through the owner's own upload path) and follow their own uploads by receipt. Nothing else."""

    def __init__(
        self,
        links: RequestLinks,
        records: FileRecords,
        uploads: Uploads,
        clock: Clock,
        verifier: Callable[[str, str], bool] = verify_password,
    ) -> None:
        self._links = links
        self._records = records
        self._uploads = uploads
        self._clock = clock
        self._verify = verifier

    def _existing(self, token: str) -> dict[str, Any]:
        """The link, whatever its state; the one 404 when there is none (unknown or revoked)."""
        if not _TOKEN.fullmatch(token):
            raise _request_not_found()
        link = self._links.get(share_id_for(token))
        if link is None:
            raise _request_not_found()
        return link

    def _open(self, token: str) -> dict[str, Any]:
        """The link while guests can upload through it; expired and used-up links read as unknown."""
        link = self._existing(token)
        if request_state(link, epoch_seconds(self._clock())) != "ACTIVE":
            raise _request_not_found()
        return link

    def _admit(self, link: dict[str, Any], password: str | None, visitor: Visitor) -> None:
        stored = link.get("passwordHash")
        now_epoch = epoch_seconds(self._clock())
        admit(
            self._links,
            link["requestId"],
            stored,
            password,
            visitor,
            now_epoch,
            self._verify,
            _request_not_found,
        )

    @staticmethod
    def _public(link: dict[str, Any]) -> PublicRequestLink:
        return PublicRequestLink(
            expiresAt=link["expiresAt"],
            filesLeft=max(0, int(link["filesLeft"])),
            bytesLeft=max(0, int(link["bytesLeft"])),
            note=link.get("note"),
        )

    def lookup(self, token: str) -> PublicRequestLink | LockedRequestLink:
        """The note and what the link still takes; a link with a password says only that it has one."""
        link = self._open(token)
        if link.get("passwordHash"):
            return LockedRequestLink()
        return self._public(link)

    def unlock(self, token: str, password: str, visitor: Visitor) -> PublicRequestLink:
        link = self._open(token)
        self._admit(link, password, visitor)
        return self._public(link)

    def create(
        self, token: str, request: GuestUploadRequest, visitor: Visitor
    ) -> GuestUploadTicket | GuestMultipartPlan:
        """Reserve a file and its bytes on the link, then issue the upload as the link's owner would get it.

        The reservation comes first and is given back if issuing fails (type, size, the owner's quota), so
        what the link still takes never counts an upload that was not issued.
        """
        link = self._open(token)
        self._admit(link, request.password, visitor)
        request_id = link["requestId"]
        if self._links.reserve(request_id, request.size, epoch_seconds(self._clock())) is None:
            current = self._links.get(request_id)
            if current is None or request_state(current, epoch_seconds(self._clock())) != "ACTIVE":
                raise _request_not_found()
            raise InvalidRequest(
                f"the file is {request.size} bytes; this link takes {current['bytesLeft']} more",
                code="RequestLimitExceeded",
            )
        receipt = secrets.token_urlsafe(32)
        upload = CreateUploadRequest(name=request.name, size=request.size, contentType=request.contentType)
        try:
            issued = self._uploads.create(
                link["ownerId"],
                upload,
                owner_email=link.get("ownerEmail"),
                marks={"requestId": request_id, "receiptHash": receipt_hash(receipt)},
            )
        except QuotaExceeded as error:
            self._links.release(request_id, request.size)
            # The owner's message tells of their storage; a guest learns only that the file does not fit.
            raise Conflict(
                "the person who asked for files has no room for this one right now",
                code="RecipientQuotaExceeded",
            ) from error
        except UploadRateExceeded as error:
            self._links.release(request_id, request.size)
            raise GuestUploadsThrottled(error.retry_after) from error
        except Exception:
            self._links.release(request_id, request.size)
            raise
        if isinstance(issued, UploadTicket):
            return GuestUploadTicket(**issued.model_dump(), receipt=receipt)
        return GuestMultipartPlan(**issued.model_dump(), receipt=receipt)

    def _guest_record(self, link: dict[str, Any], file_id: str, receipt: str) -> dict[str, Any] | None:
        """The owner's record of an upload made through this link with this receipt, else None."""
        if not FILE_ID_PATTERN.fullmatch(file_id):
            return None
        record = self._records.get(link["ownerId"], file_id)
        if record is None or record.get("requestId") != link["requestId"]:
            return None
        if not hmac.compare_digest(str(record.get("receiptHash", "")), receipt_hash(receipt)):
            return None
        return record

    def _owned_upload(self, token: str, file_id: str, receipt: str) -> dict[str, Any]:
        """An upload the guest started: the link may have expired or be used up since, not revoked."""
        link = self._existing(token)
        if self._guest_record(link, file_id, receipt) is None:
            raise _request_not_found()
        return link

    def progress(self, token: str, file_id: str, request: GuestUploadReceipt) -> UploadProgress:
        """The parts storage holds for the guest's unfinished upload, so a reload resumes it."""
        link = self._owned_upload(token, file_id, request.receipt)
        return self._uploads.progress(link["ownerId"], file_id)

    def sign_parts(self, token: str, file_id: str, request: GuestSignPartsRequest) -> SignedParts:
        link = self._owned_upload(token, file_id, request.receipt)
        return self._uploads.sign_parts(link["ownerId"], file_id, SignPartsRequest(parts=request.parts))

    def complete(self, token: str, file_id: str, request: GuestCompleteUploadRequest) -> GuestUpload:
        link = self._owned_upload(token, file_id, request.receipt)
        completed = self._uploads.complete(
            link["ownerId"], file_id, CompleteUploadRequest(uploadId=request.uploadId, parts=request.parts)
        )
        return GuestUpload(
            fileId=completed.fileId, name=completed.name, size=completed.size, status=completed.status
        )

    def status(self, token: str, request: GuestStatusRequest) -> GuestUploadList:
        """Where each of the guest's uploads stands; only those whose receipt matches, and a 404 if none."""
        link = self._existing(token)
        items = []
        for ref in request.uploads:
            record = self._guest_record(link, ref.fileId, ref.receipt)
            if record is not None:
                items.append(_guest_view(record))
        if not items:
            raise _request_not_found()
        return GuestUploadList(items=items)


def _guest_view(record: dict[str, Any]) -> GuestUpload:
    """Status only; a reason only for files refused (a failure's reason is the operator's business)."""
    error = record.get("error")
    refused = record.get("status") in (Status.REJECTED.value, Status.QUARANTINED.value)
    return GuestUpload(
        fileId=record["fileId"],
        name=record["name"],
        size=record["size"],
        status=Status(record["status"]),
        error=FileError(code=str(error.get("code")), message=str(error.get("message", "")))
        if refused and isinstance(error, dict) and error.get("code")
        else None,
    )
