"""Refusals written as each service writes its AccessDenied: code, HTTP status, body and message.

The messages follow AWS's current form, "User: <caller> is not authorized to perform: <action> on
resource: <resource> because no identity-based policy allows the <action> action"; S3 quotes the
resource, SQS spells the action in lower case, SES v1 keeps its older form with backquotes.
"""

from __future__ import annotations

import json
import uuid
from xml.sax.saxutils import escape

from filepipe.local.iam.calls import Access, Call
from filepipe.local.iam.evaluation import Decision

Response = tuple[int, list[tuple[str, str]], bytes]

_QUERY_NAMESPACES = {
    "sns": "http://sns.amazonaws.com/doc/2010-03-31/",
    "ses": "http://ses.amazonaws.com/doc/2010-12-01/",
    "email": "http://ses.amazonaws.com/doc/2010-12-01/",
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
    "iam": "https://iam.amazonaws.com/doc/2010-05-08/",
    "monitoring": "http://monitoring.amazonaws.com/doc/2010-08-01/",
    "sqs": "http://queue.amazonaws.com/doc/2012-11-05/",
}
# JSON services' __type for AccessDeniedException (botocore reads the part after '#').
_JSON_TYPES = {
    "dynamodb": "com.amazon.coral.service#AccessDeniedException",
    "sqs": "com.amazon.coral.service#AccessDeniedException",
    "states": "com.amazonaws.swf.service.v2.model#AccessDeniedException",
}


def message(call: Call, caller: str, access: Access, decision: Decision) -> str:
    """AWS's sentence for a refused access."""
    action, resource, reason = access.action, access.resource, decision.reason
    if call.service in ("ses", "email") and not call.path.startswith("/v2/"):
        return f"User `{caller}' is not authorized to perform `{action}' on resource `{resource}'"
    if call.service == "sqs":
        action = action.lower()
        reason = reason.replace(access.action, action)
    if call.service == "sns":
        action = "SNS:" + action.split(":", 1)[1]
        reason = reason.replace(access.action, action)
    where = (
        ""
        if resource == "*"
        else f' on resource: "{resource}"'
        if call.service == "s3"
        else (f" on resource: {resource}")
    )
    return f"User: {caller} is not authorized to perform: {action}{where} {reason}".rstrip()


def _query_error(service: str, code: str, text: str, request_id: str) -> bytes:
    namespace = _QUERY_NAMESPACES.get(service, "")
    return (
        f'<ErrorResponse xmlns="{namespace}"><Error><Type>Sender</Type><Code>{code}</Code>'
        f"<Message>{escape(text)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    ).encode()


def refusal(call: Call, text: str) -> Response:
    """The response a service gives when it refuses ``call`` with ``text``."""
    request_id = str(uuid.uuid4())
    if call.service == "s3":
        return s3_access_denied(text, request_id, head=call.method == "HEAD")
    if call.protocol == "query":
        code = "AuthorizationError" if call.service == "sns" else "AccessDenied"
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
        return 403, headers, _query_error(call.service, code, text, request_id)
    if call.protocol in ("json", "rpc-v2-cbor"):
        headers = [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-RequestId", request_id)]
        if call.service == "sqs":
            # SQS's JSON protocol keeps its query-era code for SDKs that ask for it (awsQueryCompatible).
            headers.append(("x-amzn-query-error", "AccessDenied;Sender"))
            body = {"__type": _JSON_TYPES["sqs"], "message": text}
            return 403, headers, json.dumps(body).encode()
        body = {"__type": _JSON_TYPES.get(call.service, "AccessDeniedException"), "message": text}
        return 400, headers, json.dumps(body).encode()
    # REST JSON services (Lambda, X-Ray, SES v2): 403, the code in a header, the message in the body.
    headers = [
        ("Content-Type", "application/json"),
        ("x-amzn-RequestId", request_id),
        ("x-amzn-ErrorType", "AccessDeniedException"),
    ]
    return 403, headers, json.dumps({"Type": "User", "Message": text}).encode()


def s3_access_denied(text: str, request_id: str | None = None, *, head: bool = False) -> Response:
    """S3's 403 AccessDenied; a HEAD's answer has no body, so clients see only the status."""
    request_id = request_id or uuid.uuid4().hex[:16].upper()
    headers = [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)]
    if head:
        return 403, headers, b""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>AccessDenied</Code><Message>{escape(text)}</Message>"
        f"<RequestId>{request_id}</RequestId><HostId>{request_id}</HostId></Error>"
    ).encode()
    return 403, headers, body
