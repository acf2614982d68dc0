"""GuardDuty's patch to moto: every object S3 stores is offered to Malware Protection once it is stored.

moto tells its S3 notification hook (``moto.s3.notifications.send_event``) about each object created, by
PUT (the runtime's POST Object front stores through a PUT), POST, copy or a completed multipart upload, and
calls it whatever the bucket's notification configuration: GuardDuty does not depend on the bucket's own
notifications, so this hook sees what S3's EventBridge events would miss (the runtime's S3 -> EventBridge
path is moto's own, and only sees buckets that enable it).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from filepipe.local.moto_patches import Uninstall, moto_patch, replace

log = logging.getLogger("filepipe.local.guardduty")

# (account, region, bucket, key, version id or None in an unversioned bucket, ETag without quotes)
ObjectCreated = Callable[[str, str, str, str, str | None, str], None]
Offer = tuple[str, str, str, str, str | None, str]


def _offered_to_no_one(
    account: str, region: str, bucket: str, key: str, version: str | None, etag: str
) -> None:
    return None


@moto_patch(
    "moto.s3.notifications.send_event",
    "moto.s3.notifications.S3NotificationEvent",
    "moto.s3.models.notifications",
    "moto.s3.responses.S3Response.key_response",
)
def offer_created_objects(sink: ObjectCreated = _offered_to_no_one) -> Uninstall:
    """Wraps ``send_event``: each ObjectCreated event's object goes to ``sink``, then the event to moto.

    Within an object request (``S3Response.key_response``) the offer waits for the request's end: moto
    applies a PUT's tags (``x-amz-tagging``, or none) after it stored the object and told the hook, and a
    scan that finished first would see its tag replaced, where S3 stores object and tags at once. moto
    completes a multipart upload by storing the object with ``put_object`` (an ObjectCreated:Put for a key
    whose ``multipart`` is set) and then sends CompleteMultipartUpload: the upload is offered once, at the
    second. Relies on ``moto.s3.models`` calling the hook through its module, each bucket's ``name`` and
    ``region_name``, and each key's ``name``, ``multipart``, ``version_id`` ("null" in a bucket that never
    had versioning) and ``etag``. ``sink`` must return at once (it runs on the thread answering the
    request); whatever it raises is logged, never the request's failure. Without a sink (how the
    registry's own tests install every patch) objects are offered to no one.
    """
    import moto.s3.notifications as notifications
    from moto.s3.responses import S3Response

    created = notifications.S3NotificationEvent
    offered = {
        created.OBJECT_CREATED_PUT_EVENT,
        created.OBJECT_CREATED_POST_EVENT,
        created.OBJECT_CREATED_COPY_EVENT,
        created.OBJECT_CREATED_COMPLETE_MULTIPART_UPLOAD_EVENT,
    }
    send_event = notifications.send_event
    key_response = S3Response.key_response
    pending = threading.local()  # the offers of the object request this thread is answering

    def offer(created_object: Offer) -> None:
        try:
            sink(*created_object)
        except Exception:
            log.exception(
                "could not offer s3://%s/%s to Malware Protection", created_object[2], created_object[3]
            )

    def send(account_id: str, event_name: Any, bucket: Any, key: Any, *args: Any, **kwargs: Any) -> None:
        part_of_multipart = event_name == created.OBJECT_CREATED_PUT_EVENT and key.multipart is not None
        if event_name in offered and not part_of_multipart:
            version = None if str(key.version_id) == "null" else str(key.version_id)
            created_object = (
                account_id,
                bucket.region_name,
                bucket.name,
                key.name,
                version,
                str(key.etag).strip('"'),
            )
            waiting: list[Offer] | None = getattr(pending, "offers", None)
            if waiting is None:
                offer(created_object)
            else:
                waiting.append(created_object)
        send_event(account_id, event_name, bucket, key, *args, **kwargs)

    def answer_then_offer(self: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(pending, "offers", None) is not None:
            return key_response(self, *args, **kwargs)
        pending.offers = []
        try:
            return key_response(self, *args, **kwargs)
        finally:
            waiting, pending.offers = pending.offers, None
            for created_object in waiting:
                offer(created_object)

    undo_send = replace(notifications, send_event=send)
    undo_response = replace(S3Response, key_response=answer_then_offer)

    def uninstall() -> None:
        undo_response()
        undo_send()

    return uninstall
