"""GuardDuty's SendObjectMalwareScan on the AWS endpoint (moto has no such operation).

The request is botocore's (``POST /object-malware-scan/send``, ``{"s3Object": {"bucket", "key",
"versionId"}}``); the endpoint has let IAM decide it before it gets here. GuardDuty answers 200 with an
empty body and scans the object version as an upload would be scanned, with the plan's role, but whatever
the plan's prefixes ("On-demand malware scan" in the GuardDuty user guide: the scan overrides them). It
refuses with BadRequestException a bucket no plan protects and an object (or version) that does not exist;
the messages are the runtime's, AWS documents only the code.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from filepipe.local.iam.wire import read_body, signature
from filepipe.local.services.guardduty.access import SEND_OBJECT_MALWARE_SCAN_PATH
from filepipe.local.services.guardduty.plans import GuardDutyError, bad_request, plan_for_bucket
from filepipe.local.services.guardduty.protection import ScanRequest

Response = tuple[int, list[tuple[str, str]], bytes]
Queue = Callable[[ScanRequest], None]
# The body GuardDuty's 4xx errors carry, besides the code in x-amzn-ErrorType.
_ERROR_TYPES = {
    400: "InvalidInputException",
    403: "AccessDeniedException",
    500: "InternalServerErrorException",
}


def _answer(status: int, body: dict[str, Any], headers: list[tuple[str, str]] | None = None) -> Response:
    base = [("Content-Type", "application/json"), ("x-amzn-RequestId", str(uuid.uuid4()))]
    return status, [*base, *(headers or [])], json.dumps(body).encode()


def error_response(error: GuardDutyError) -> Response:
    body = {"message": error.message, "__type": _ERROR_TYPES.get(error.status, error.code)}
    return _answer(error.status, body, [("x-amzn-ErrorType", error.code)])


class GuardDutyApi:
    """The GuardDuty operations the endpoint answers itself; ``queue`` is set once the emulation runs."""

    def __init__(self, account: str, region: str) -> None:
        self.account = account
        self.region = region
        self._queue: Queue | None = None

    def serve(self, queue: Queue | None) -> None:
        self._queue = queue

    def __call__(self, environ: dict[str, Any]) -> Response | None:
        """GuardDuty's answer to a request it handles; None for any other request (moto's to answer)."""
        method = str(environ.get("REQUEST_METHOD", "GET"))
        path = str(environ.get("PATH_INFO", "")).rstrip("/")
        if (method, path) != ("POST", SEND_OBJECT_MALWARE_SCAN_PATH):
            return None
        signed = signature(environ)  # the path alone could be an S3 key's
        if signed is None or signed.service != "guardduty":
            return None
        region = signed.region or self.region
        try:
            self._send_object_malware_scan(region, read_body(environ))
        except GuardDutyError as error:
            return error_response(error)
        return 200, [("x-amzn-RequestId", str(uuid.uuid4()))], b""

    def _send_object_malware_scan(self, region: str, body: bytes) -> None:
        try:
            request = json.loads(body or b"{}")
        except ValueError as error:
            raise bad_request("The request body is not JSON.") from error
        target = request.get("s3Object") if isinstance(request, dict) else None
        if not isinstance(target, dict) or not target.get("bucket") or not target.get("key"):
            raise bad_request("s3Object must name the bucket and the key of the object to scan.")
        bucket, key = str(target["bucket"]), str(target["key"])
        version_id = str(target["versionId"]) if target.get("versionId") else None
        plan = plan_for_bucket(self.account, region, bucket)
        if plan is None:
            raise bad_request(f"The bucket {bucket} is not protected by a Malware Protection plan.")
        stored = self._stored_object(bucket, key, version_id)
        if stored is None:
            which = f" version {version_id}" if version_id else ""
            raise bad_request(f"The object {key}{which} does not exist in the bucket {bucket}.")
        stored_version, etag = stored
        if self._queue is None:
            raise GuardDutyError("InternalServerErrorException", 500, "Malware Protection is not running.")
        self._queue(ScanRequest(plan, bucket, key, stored_version, etag))

    def _stored_object(self, bucket: str, key: str, version_id: str | None) -> tuple[str | None, str] | None:
        """The version GuardDuty would scan (the latest without ``version_id``) and its ETag, or None."""
        from moto.s3.models import s3_backends

        try:
            found = s3_backends[self.account]["aws"].get_object(bucket, key, version_id)
        except Exception:  # moto's MissingBucket, or a version id it cannot read
            return None
        if found is None:
            return None
        version = None if str(found.version_id) == "null" else str(found.version_id)
        return version, str(found.etag).strip('"')
