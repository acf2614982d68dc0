"""S3 browser-based uploads (POST Object): the policy, signature, expiry and size checks S3 makes.

The template's buckets are new, and S3 takes only Signature Version 4 on buckets created since June 2020:
a form signed with Signature Version 2 is refused as S3 refuses it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from werkzeug.datastructures import MultiDict
from werkzeug.formparser import MultiPartParser
from werkzeug.http import parse_options_header

SecretLookup = Callable[[str], str | None]

# Fields S3 never requires the policy to mention.
_UNCHECKED_FIELDS = frozenset({"policy", "x-amz-signature", "signature", "awsaccesskeyid", "file"})


@dataclass
class S3PostError(Exception):
    """A refusal with the status, code and message S3 answers with."""

    status: int
    code: str
    message: str
    details: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def to_xml(self, request_id: str | None = None) -> bytes:
        request_id = request_id or uuid.uuid4().hex[:16].upper()
        extra = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in self.details.items())
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{escape(self.code)}</Code><Message>{escape(self.message)}</Message>{extra}"
            f"<RequestId>{request_id}</RequestId><HostId>{request_id}</HostId></Error>"
        ).encode()


@dataclass(frozen=True)
class PostForm:
    """A parsed POST Object request: its form fields (names lower-cased) and the file."""

    fields: dict[str, str]
    file_name: str | None
    content: bytes

    @property
    def size(self) -> int:
        return len(self.content)


@dataclass(frozen=True)
class AcceptedUpload:
    """What S3 stores after the policy allowed the POST, and whose credential signed the policy."""

    bucket: str
    key: str
    form: PostForm
    access_key: str = ""


def _denied(message: str) -> S3PostError:
    return S3PostError(403, "AccessDenied", message)


def _known_secret(secret_for: SecretLookup, access_key: str) -> str:
    secret = secret_for(access_key)
    if secret is None:
        raise S3PostError(
            403,
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.",
            {"AWSAccessKeyId": access_key},
        )
    return secret


def _invalid_argument(message: str, name: str | None = None, value: str | None = None) -> S3PostError:
    details = {}
    if name is not None:
        details = {"ArgumentName": name, "ArgumentValue": value or ""}
    return S3PostError(400, "InvalidArgument", message, details)


def parse_form(body: bytes, content_type: str) -> PostForm:
    """Split a multipart/form-data body into its fields (names lower-cased) and its one file."""
    mimetype, options = parse_options_header(content_type)
    boundary = options.get("boundary")
    if mimetype != "multipart/form-data" or not boundary:
        raise S3PostError(
            412,
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold",
            {"Condition": "Bucket POST must be of the enclosure-type multipart/form-data"},
        )
    parts = _split_plain_multipart(body, boundary.encode())
    if parts is None:
        parts = _split_multipart(body, boundary.encode())
    fields, uploads = parts
    chosen = [upload for upload in uploads if upload[0] == "file"]
    if len(chosen) != 1 or len(uploads) != 1:
        raise _invalid_argument(
            "POST requires exactly one file upload per request.", "file", str(len(chosen))
        )
    _, file_name, content = chosen[0]
    lowered = {name.lower(): value for name, value in MultiDict(fields).items(multi=False)}
    return PostForm(fields=lowered, file_name=file_name, content=content)


# The fields (name, text) and the files (name, file name, bytes) of a form, in the order sent.
_Parts = tuple[list[tuple[str, str]], list[tuple[str, str, bytes]]]


def _split_multipart(body: bytes, boundary: bytes) -> _Parts:
    """Any multipart body werkzeug accepts (preambles, folded headers, charsets), parsed by werkzeug."""
    # The body is in memory already; the file part stays there rather than in a temporary file.
    parser = MultiPartParser(stream_factory=lambda *_args, **_kwargs: io.BytesIO())
    try:
        form, files = parser.parse(io.BytesIO(body), boundary, len(body))
    except ValueError as error:
        raise S3PostError(
            400,
            "MalformedPOSTRequest",
            f"The body of your POST request is not well-formed multipart/form-data: {error}",
        ) from error
    fields = list(form.items(multi=True))
    try:
        uploads = [
            (name, stored.filename or "", stored.stream.read()) for name, stored in files.items(multi=True)
        ]
    finally:
        for _name, stored in files.items(multi=True):
            stored.close()
    return fields, uploads


def _split_plain_multipart(body: bytes, boundary: bytes) -> _Parts | None:
    """The parts of a body as browsers and HTTP libraries write it, each part's data copied once.

    werkzeug's parser goes through the body in small chunks and copies a file several times; this finds
    the delimiters in place. Anything it does not expect (a preamble, folded or non-UTF-8 headers, a
    field with its own content type, a missing delimiter) returns None: werkzeug's parser decides then.
    """
    delimiter = b"--" + boundary
    separator = b"\r\n" + delimiter
    if not body.startswith(delimiter):
        return None
    fields: list[tuple[str, str]] = []
    uploads: list[tuple[str, str, bytes]] = []
    position = len(delimiter)
    while not body.startswith(b"--", position):
        if not body.startswith(b"\r\n", position):
            return None
        headers_end = body.find(b"\r\n\r\n", position)
        if headers_end == -1:
            return None
        data_end = body.find(separator, headers_end + 4)
        if data_end == -1:
            return None
        headers: dict[str, str] = {}
        for line in body[position + 2 : headers_end].split(b"\r\n"):
            if not line or line[:1] in (b" ", b"\t"):
                return None
            try:
                name, colon, value = line.decode().partition(":")
            except UnicodeDecodeError:
                return None
            if not colon:
                return None
            headers[name.strip(" \t").lower()] = value.strip(" \t")
        disposition = headers.get("content-disposition")
        if disposition is None:
            return None
        _kind, extra = parse_options_header(disposition)
        part_name = extra.get("name")
        if part_name is None:
            return None
        file_name = extra.get("filename")
        data = body[headers_end + 4 : data_end]
        if file_name is None:
            if "content-type" in headers:
                return None
            fields.append((part_name, data.decode("utf-8", "replace")))
        else:
            uploads.append((part_name, file_name, data))
        position = data_end + len(separator)
    return fields, uploads


# The policy's expiration: ISO 8601 in GMT ("2026-11-22T12:00:00.000Z"); S3 refuses an offset or a space.
_EXPIRATION = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def _parse_expiration(text: Any) -> datetime:
    invalid = S3PostError(
        400, "InvalidPolicyDocument", f"Invalid Policy: Invalid 'expiration' value: '{text}'"
    )
    if not isinstance(text, str) or not _EXPIRATION.fullmatch(text):
        raise invalid
    try:
        return datetime.fromisoformat(text.removesuffix("Z")).replace(tzinfo=UTC)
    except ValueError as error:  # the right shape, not a date (month 13, 30 February)
        raise invalid from error


def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = hmac.new(f"AWS4{secret}".encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _check_credential_scope(credential: str, region: str | None) -> None:
    """The scope must name the bucket's region and S3, as S3 answers a form whose scope does not."""
    _access_key, _date, scope_region, service, _terminal = credential.split("/")
    if region is not None and scope_region != region:
        error = _invalid_argument(
            f"the region '{scope_region}' is wrong; expecting '{region}'", "X-Amz-Credential", credential
        )
        error.details["Region"] = region
        raise error
    if service != "s3":
        raise _invalid_argument(
            f'incorrect service "{service}". This endpoint belongs to "s3".',
            "X-Amz-Credential",
            credential,
        )


def _check_signature(
    fields: Mapping[str, str], policy_b64: str, secret_for: SecretLookup, region: str | None
) -> str:
    """Check the form's SigV4 signature of the policy; the access key that made it."""
    if "x-amz-signature" in fields or "x-amz-credential" in fields:
        algorithm = fields.get("x-amz-algorithm", "")
        if algorithm != "AWS4-HMAC-SHA256":
            raise _invalid_argument(
                "Only AWS4-HMAC-SHA256 is supported for x-amz-algorithm", "x-amz-algorithm", algorithm
            )
        for required in ("x-amz-credential", "x-amz-signature", "x-amz-date"):
            if required not in fields:
                raise _invalid_argument(
                    f"Bucket POST must contain a field named '{required}'.  If it is specified, "
                    "please check the order of the fields.",
                    required,
                )
        credential = fields["x-amz-credential"]
        parts = credential.split("/")
        if len(parts) != 5 or parts[4] != "aws4_request":
            raise _invalid_argument(
                "Error parsing the X-Amz-Credential parameter", "x-amz-credential", credential
            )
        _check_credential_scope(credential, region)
        access_key, date, scope_region, service, _ = parts
        if not fields["x-amz-date"].startswith(date):
            raise _invalid_argument(
                "Invalid credential date. Date is not the same as X-Amz-Date.", "x-amz-credential", credential
            )
        secret = _known_secret(secret_for, access_key)
        expected = hmac.new(
            _signing_key(secret, date, scope_region, service), policy_b64.encode(), hashlib.sha256
        ).hexdigest()
        provided = fields["x-amz-signature"]
    elif "signature" in fields or "awsaccesskeyid" in fields:
        # Signature Version 2: new buckets (every bucket of the template) do not take it.
        raise S3PostError(
            400,
            "InvalidRequest",
            "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.",
        )
    else:
        raise _invalid_argument(
            "Bucket POST must contain a field named 'x-amz-signature'.  If it is specified, "
            "please check the order of the fields.",
            "x-amz-signature",
        )
    if not hmac.compare_digest(expected, provided):
        raise S3PostError(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. "
            "Check your key and signing method.",
        )
    return access_key


def _condition_text(condition: Any) -> str:
    return json.dumps(condition, separators=(", ", ": "))


def _field_value(name: str, bucket: str, fields: Mapping[str, str]) -> str | None:
    name = name.lower().removeprefix("$")
    if name == "bucket":
        return bucket
    return fields.get(name)


def _check_conditions(conditions: list[Any], bucket: str, form: PostForm) -> None:
    covered: set[str] = set()
    length_range: tuple[int, int] | None = None
    for condition in conditions:
        if isinstance(condition, dict):
            if len(condition) != 1:
                raise S3PostError(
                    400,
                    "InvalidPolicyDocument",
                    "Invalid Policy: Invalid Simple-Condition: "
                    "Simple-Conditions must have exactly one property specified.",
                )
            ((name, expected),) = condition.items()
            covered.add(name.lower())
            if _field_value(name, bucket, form.fields) != str(expected):
                # S3 names an exact-match condition the way its eq form reads.
                as_eq = ["eq", f"${name}", expected]
                raise _denied(
                    f"Invalid according to Policy: Policy Condition failed: {_condition_text(as_eq)}"
                )
        elif isinstance(condition, list) and condition:
            operator = str(condition[0]).lower()
            if operator == "content-length-range" and len(condition) == 3:
                try:
                    length_range = (int(condition[1]), int(condition[2]))
                except (TypeError, ValueError) as error:
                    raise S3PostError(
                        400, "InvalidPolicyDocument", "Invalid Policy: Invalid content-length-range."
                    ) from error
            elif operator in {"eq", "starts-with"} and len(condition) == 3:
                name, expected = str(condition[1]), str(condition[2])
                if not name.startswith("$"):
                    raise S3PostError(
                        400,
                        "InvalidPolicyDocument",
                        f"Invalid Policy: Invalid Condition: {_condition_text(condition)}",
                    )
                covered.add(name[1:].lower())
                actual = _field_value(name, bucket, form.fields)
                if operator == "eq":
                    ok = actual == expected
                elif name.lower() == "$content-type" and actual is not None:
                    ok = all(part.strip().startswith(expected) for part in actual.split(","))
                else:
                    ok = actual is not None and actual.startswith(expected)
                if not ok:
                    raise _denied(
                        f"Invalid according to Policy: Policy Condition failed: {_condition_text(condition)}"
                    )
            else:
                raise S3PostError(
                    400,
                    "InvalidPolicyDocument",
                    f"Invalid Policy: Invalid Condition: {_condition_text(condition)}",
                )
        else:
            raise S3PostError(400, "InvalidPolicyDocument", "Invalid Policy: Invalid 'conditions' value.")

    extra = sorted(
        name
        for name in form.fields
        if name not in covered and name not in _UNCHECKED_FIELDS and not name.startswith("x-ignore-")
    )
    if extra:
        raise _denied(f"Invalid according to Policy: Extra input fields: {', '.join(extra)}")

    if length_range is not None:
        low, high = length_range
        if form.size > high:
            raise S3PostError(
                400,
                "EntityTooLarge",
                "Your proposed upload exceeds the maximum allowed size",
                {"ProposedSize": str(form.size), "MaxSizeAllowed": str(high)},
            )
        if form.size < low:
            raise S3PostError(
                400,
                "EntityTooSmall",
                "Your proposed upload is smaller than the minimum allowed size",
                {"ProposedSize": str(form.size), "MinSizeAllowed": str(low)},
            )


def check_post(
    bucket: str,
    form: PostForm,
    secret_for: SecretLookup,
    now: datetime | None = None,
    region: str | None = None,
) -> AcceptedUpload:
    """Accept the upload as S3 would, or raise the S3PostError S3 answers with.

    ``region`` is the bucket's: the credential's scope must name it (None skips that check).
    """
    fields = form.fields
    if "key" not in fields:
        raise _invalid_argument(
            "Bucket POST must contain a field named 'key'.  "
            "If it is specified, please check the order of the fields.",
            "key",
        )
    policy_b64 = fields.get("policy")
    if policy_b64 is None:
        # Without a policy the request is anonymous; the buckets here never allow anonymous writes.
        raise _denied("Access Denied")
    access_key = _check_signature(fields, policy_b64, secret_for, region)
    try:
        policy = json.loads(base64.b64decode(policy_b64, validate=True))
    except (binascii.Error, ValueError) as error:
        raise S3PostError(400, "InvalidPolicyDocument", "Invalid Policy: Invalid JSON.") from error
    if not isinstance(policy, dict):
        raise S3PostError(400, "InvalidPolicyDocument", "Invalid Policy: Invalid JSON.")
    for required in ("expiration", "conditions"):
        if required not in policy:
            raise S3PostError(400, "InvalidPolicyDocument", f"Invalid Policy: Policy missing {required}.")
    if _parse_expiration(policy["expiration"]) <= (now or datetime.now(UTC)):
        raise _denied("Invalid according to Policy: Policy expired.")
    if not isinstance(policy["conditions"], list):
        raise S3PostError(400, "InvalidPolicyDocument", "Invalid Policy: Invalid 'conditions' value.")
    _check_conditions(policy["conditions"], bucket, form)
    key = fields["key"].replace("${filename}", form.file_name or "")
    return AcceptedUpload(bucket=bucket, key=key, form=form, access_key=access_key)


def signed_put_headers(
    host: str, bucket: str, key: str, region: str, access_key: str, secret: str, token: str | None = None
) -> dict[str, str]:
    """SigV4 headers of the PUT that stores an accepted upload, signed as the form's signer.

    S3 authorizes a POST as the identity that signed its policy; the object is stored under that identity
    (an unsigned PUT would be an anonymous write). The payload is not signed, as SDKs do over HTTPS.
    """
    from urllib.parse import quote

    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.config import Config
    from botocore.credentials import Credentials

    request = AWSRequest(method="PUT", url=f"https://{host}/{bucket}/{quote(key)}", headers={"Host": host})
    request.context["client_config"] = Config(s3={"payload_signing_enabled": False})
    S3SigV4Auth(Credentials(access_key, secret, token), "s3", region).add_auth(request)
    return {name: str(value) for name, value in request.headers.items() if name != "Host"}


# Form fields that become headers of the stored object, as S3 treats them.
OBJECT_HEADER_FIELDS = (
    "content-type",
    "cache-control",
    "content-disposition",
    "content-encoding",
    "expires",
    "x-amz-storage-class",
    "x-amz-server-side-encryption",
    "x-amz-website-redirect-location",
    "x-amz-checksum-algorithm",
    "x-amz-checksum-crc32",
    "x-amz-checksum-crc32c",
    "x-amz-checksum-sha1",
    "x-amz-checksum-sha256",
)


def object_headers(form: PostForm) -> dict[str, str]:
    """The PUT headers that store the object the way the POST describes it."""
    headers = {name: form.fields[name] for name in OBJECT_HEADER_FIELDS if name in form.fields}
    headers.update({name: value for name, value in form.fields.items() if name.startswith("x-amz-meta-")})
    return headers
