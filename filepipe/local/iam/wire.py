"""Requests off the wire: who signed them, for which service, and which operation they call."""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from filepipe.local.iam.calls import Call

# SigV4's credential scope: AKID/20261122/us-east-1/dynamodb/aws4_request.
_SCOPE = re.compile(r"^(?P<key>[^/]+)/\d{8}/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request")
_V4_HEADER = re.compile(r"Credential=([^,\s]+)")
_JSON_BODY_LIMIT = 16 * 1024 * 1024  # JSON requests are small; this only guards against a stray upload


@dataclass(frozen=True)
class Signature:
    """The access key a request is signed with, and the region and service it was signed for."""

    access_key: str
    region: str | None
    service: str | None
    presigned: bool


def signature(environ: dict[str, Any]) -> Signature | None:
    """The request's signature (header or presigned query); None for an unsigned request."""
    authorization = str(environ.get("HTTP_AUTHORIZATION", ""))
    if authorization:
        found = _V4_HEADER.search(authorization)
        if found:
            scope = _SCOPE.match(found.group(1))
            if scope:
                return Signature(scope["key"], scope["region"], scope["service"], presigned=False)
        if authorization.startswith("AWS "):  # SigV2: "AWS AKID:signature"
            return Signature(authorization[4:].partition(":")[0], None, None, presigned=False)
        return None
    query = str(environ.get("QUERY_STRING", ""))
    if "X-Amz-Credential=" in query:
        credential = parse_qs(query).get("X-Amz-Credential", [""])[0]
        scope = _SCOPE.match(credential)
        if scope:
            return Signature(scope["key"], scope["region"], scope["service"], presigned=True)
    if "AWSAccessKeyId=" in query:
        return Signature(parse_qs(query).get("AWSAccessKeyId", [""])[0], None, "s3", presigned=True)
    return None


def read_body(environ: dict[str, Any]) -> bytes:
    """The request body, put back for whoever reads it next (moto)."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def headers_of(environ: dict[str, Any]) -> dict[str, str]:
    found = {
        key[5:].lower().replace("_", "-"): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    if environ.get("CONTENT_TYPE"):
        found["content-type"] = str(environ["CONTENT_TYPE"])
    return found


def _flatten_query(fields: dict[str, list[str]]) -> dict[str, Any]:
    return {name: values[0] if len(values) == 1 else values for name, values in fields.items()}


def parse(environ: dict[str, Any], service: str, account: str, region: str, presigned: bool) -> Call:
    """The call a request makes of ``service``; REST services' operations are named by their own module."""
    method = str(environ.get("REQUEST_METHOD", "GET"))
    path = str(environ.get("PATH_INFO", "")) or "/"
    query = parse_qs(str(environ.get("QUERY_STRING", "")), keep_blank_values=True)
    headers = headers_of(environ)
    call = Call(
        service=service,
        operation="",
        params={},
        account=account,
        region=region,
        method=method,
        path=path,
        query=query,
        headers=headers,
        auth_type="REST-QUERY-STRING" if presigned else "REST-HEADER",
    )
    target = headers.get("x-amz-target", "")
    content_type = headers.get("content-type", "")
    if target:
        call.protocol = "json"
        call.operation = target.rpartition(".")[2]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if 0 < length <= _JSON_BODY_LIMIT and "cbor" not in content_type:
            try:
                decoded = json.loads(read_body(environ) or b"{}")
            except ValueError:
                decoded = {}
            call.params = decoded if isinstance(decoded, dict) else {}
    elif "Action" in query:
        call.protocol = "query"
        call.operation = query["Action"][0]
        call.params = _flatten_query(query)
    elif method == "POST" and content_type.startswith("application/x-www-form-urlencoded"):
        fields = parse_qs(read_body(environ).decode("utf-8", "replace"), keep_blank_values=True)
        call.protocol = "query"
        call.operation = fields.get("Action", [""])[0]
        call.params = _flatten_query(fields)
    elif "/operation/" in path and "cbor" in content_type:
        # Smithy RPC v2 (CloudWatch's default now): /service/<Service>/operation/<Operation>, CBOR body.
        call.protocol = "rpc-v2-cbor"
        call.operation = path.rsplit("/operation/", 1)[1]
    else:
        call.protocol = "rest-xml" if service == "s3" else "rest-json"
        if service == "ses" and method == "POST" and "json" in content_type:  # SES v2 sends
            try:
                decoded = json.loads(read_body(environ) or b"{}")
            except ValueError:
                decoded = {}
            call.params = decoded if isinstance(decoded, dict) else {}
    return call


def members(params: dict[str, Any], prefix: str) -> list[str]:
    """A query-protocol list: ``Destination.ToAddresses.member.1``, ``.member.2``, ... in order."""
    found = []
    index = 1
    while f"{prefix}.member.{index}" in params:
        value = params[f"{prefix}.member.{index}"]
        found.append(value if isinstance(value, str) else value[0])
        index += 1
    return found
