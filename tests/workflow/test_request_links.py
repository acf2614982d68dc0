"""Guest uploads through a request link in ProcessUpload, with each Scanner: the same workflow as the owner's
own uploads, so an infected file is quarantined and never downloadable, a clean one lands READY in the
owner's files marked with its link, and the owner is emailed either way."""

from __future__ import annotations

from api.clock import utc_now
from api.files import CleanLinks, file_view
from api.issuing import upload_service
from api.models import (
    CreateRequestLinkRequest,
    GuestStatusRequest,
    GuestUploadRef,
    GuestUploadRequest,
    GuestUploadTicket,
)
from api.request_links import GuestUploads, OwnerRequests
from api.settings import ShareApiSettings
from api.visitors import Visitor
from common.model import FileRef, clean_prefix, quarantine_key
from common.records import FileRecords
from common.request_links import RequestLinks
from common.storage import ObjectStore
from filepipe.clamd import eicar_bytes
from tests import images
from tests.workflow.harness import OWNER, OWNER_EMAIL, Pipeline


def _request_links(pipeline: Pipeline) -> tuple[OwnerRequests, GuestUploads]:
    """The owner's and the guest's side over the stack, wired as the two API functions wire them."""
    settings = ShareApiSettings.model_validate(pipeline.stack.function("ShareApiFunction").environment)
    dynamodb = pipeline.stack.client("dynamodb")
    links = RequestLinks(dynamodb, pipeline.stack.physical("FilesTable"))
    records = FileRecords(dynamodb, pipeline.stack.physical("FilesTable"))
    owner = OwnerRequests(links, "https://files.example.com", utc_now)
    guest = GuestUploads(links, records, upload_service(settings, utc_now), utc_now)
    return owner, guest


def _send(
    pipeline: Pipeline, guest: GuestUploads, token: str, name: str, data: bytes, kind: str
) -> GuestUploadTicket:
    """Ask for an upload as a guest, then put the object where the presigned POST would have."""
    issued = guest.create(token, GuestUploadRequest(name=name, size=len(data), contentType=kind), Visitor())
    assert isinstance(issued, GuestUploadTicket)
    key = issued.fields["key"]
    version = pipeline.s3.put_object(Bucket=pipeline.ingest, Key=key, Body=data, ContentType=kind)
    ref = FileRef(pipeline.ingest, key, version["VersionId"], OWNER, issued.fileId)
    if pipeline.guardduty is not None:  # the protection plan scans every new upload version
        pipeline.guardduty.uploaded(ref, data, str(version["ETag"]))
    messages = pipeline.queued_start_messages()
    assert len(messages) == 1, messages
    assert pipeline.start(messages) == {"batchItemFailures": []}
    assert pipeline.wait(issued.fileId)["status"] == "SUCCEEDED"
    return issued


def test_a_guests_infected_file_is_quarantined_never_downloadable_and_the_owner_is_told(
    pipeline: Pipeline,
) -> None:
    owners, guest = _request_links(pipeline)
    link = owners.create(OWNER, CreateRequestLinkRequest(maxFiles=2, note="Your scans, please"), OWNER_EMAIL)

    issued = _send(pipeline, guest, link.token, "scan.txt", eicar_bytes(), "text/plain")

    record = pipeline.records.get(OWNER, issued.fileId)
    assert record is not None
    assert (record["status"], record["requestId"]) == ("QUARANTINED", link.requestId)
    assert pipeline.keys(pipeline.quarantine) == [quarantine_key(OWNER, issued.fileId)]
    assert pipeline.keys(pipeline.clean, clean_prefix(OWNER, issued.fileId)) == []
    links = CleanLinks(ObjectStore(pipeline.s3), pipeline.clean, utc_now)
    shown = file_view(record, links)  # what GET /files/{fileId} answers the owner
    assert (shown.downloadUrl, shown.thumbnails, shown.requestId) == (None, None, link.requestId)
    [email] = pipeline.sent_emails()
    assert email.destinations["ToAddresses"] == [OWNER_EMAIL]
    assert email.subject == "Your file scan.txt was quarantined"
    assert "A guest sent it through one of your request links." in email.body
    seen = guest.status(
        link.token, GuestStatusRequest(uploads=[GuestUploadRef(fileId=issued.fileId, receipt=issued.receipt)])
    )
    [upload] = seen.items
    assert upload.status == "QUARANTINED"
    assert upload.error is not None
    assert "downloadUrl" not in upload.model_dump()


def test_a_guests_clean_file_lands_ready_in_the_owners_files_marked_with_its_link(pipeline: Pipeline) -> None:
    owners, guest = _request_links(pipeline)
    link = owners.create(OWNER, CreateRequestLinkRequest(maxFiles=1), OWNER_EMAIL)

    issued = _send(pipeline, guest, link.token, "harbour.jpg", images.jpeg((160, 120)), "image/jpeg")

    record = pipeline.records.get(OWNER, issued.fileId)
    assert record is not None
    assert (record["status"], record["requestId"]) == ("READY", link.requestId)
    assert "receipt" not in record
    assert pipeline.keys(pipeline.clean, clean_prefix(OWNER, issued.fileId))
    [email] = pipeline.sent_emails()
    assert email.subject == "Your file harbour.jpg is ready"
    assert "request link" in email.body
    [listed] = owners.list(OWNER).items
    assert (listed.filesReceived, listed.state) == (1, "USED_UP")
