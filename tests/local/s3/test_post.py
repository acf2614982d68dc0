"""S3 POST Object policies: what S3 accepts and the error codes it answers with, for boto3-made policies."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.config import Config
from urllib3 import encode_multipart_formdata
from werkzeug.datastructures import MultiDict
from werkzeug.http import parse_options_header

from filepipe.bench.e2e import sample_jpeg
from filepipe.local.client import BrowserClient
from filepipe.local.services.s3.post import (
    AcceptedUpload,
    PostForm,
    S3PostError,
    _split_multipart,
    _split_plain_multipart,
    check_post,
    object_headers,
    parse_form,
    signed_put_headers,
)
from filepipe.runtime_state import ACCESS_KEY_ID, DEMO_EMAIL, DEMO_PASSWORD, SECRET_ACCESS_KEY
from tests.local.conftest import LocalProcess

ACCESS_KEY = "AKIAEXAMPLELOCAL0001"
SECRET = "local-test-secret"
BUCKET = "ingest-bucket"
KEY = "uploads/owner/01ARZ3NDEKTSV4RRFFQ69G5FAV"
REGION = "us-east-1"


def secrets(access_key: str) -> str | None:
    return SECRET if access_key == ACCESS_KEY else None


def presigned(
    key: str = KEY,
    *,
    conditions: list[object] | None = None,
    fields: dict[str, str] | None = None,
    expires: int = 300,
    secret: str = SECRET,
    signature_version: str = "s3v4",
    region: str = REGION,
) -> dict[str, str]:
    s3 = boto3.client(
        "s3",
        region_name=region,
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=secret,
        config=Config(signature_version=signature_version),
    )
    post = s3.generate_presigned_post(
        BUCKET,
        key,
        Fields=fields if fields is not None else {"Content-Type": "image/jpeg"},
        Conditions=conditions
        if conditions is not None
        else [["content-length-range", 10, 100], {"Content-Type": "image/jpeg"}],
        ExpiresIn=expires,
    )
    result: dict[str, str] = post["fields"]
    return result


def form(fields: dict[str, str], content: bytes = b"x" * 50, filename: str = "photo.jpg") -> PostForm:
    parts: list[tuple[str, str | tuple[str, bytes, str]]] = list(fields.items())
    parts.append(("file", (filename, content, "application/octet-stream")))
    body, content_type = encode_multipart_formdata(parts)
    return parse_form(body, content_type)


def refusal(fields: dict[str, str], content: bytes = b"x" * 50, now: datetime | None = None) -> S3PostError:
    with pytest.raises(S3PostError) as caught:
        check_post(BUCKET, form(fields, content), secrets, now=now, region=REGION)
    return caught.value


def test_a_boto3_policy_is_accepted_with_its_key_and_headers() -> None:
    accepted = check_post(BUCKET, form(presigned()), secrets, region=REGION)
    assert isinstance(accepted, AcceptedUpload)
    assert accepted.key == KEY
    assert accepted.access_key == ACCESS_KEY
    assert accepted.form.size == 50
    assert object_headers(accepted.form) == {"content-type": "image/jpeg"}


def test_form_field_names_are_case_insensitive() -> None:
    fields = {name.upper() if name == "key" else name: value for name, value in presigned().items()}
    assert check_post(BUCKET, form(fields), secrets).key == KEY


def test_a_prefix_condition_accepts_keys_below_it_and_filename_is_substituted() -> None:
    fields = presigned(
        "uploads/owner/${filename}",
        conditions=[["starts-with", "$key", "uploads/owner/"], {"Content-Type": "image/jpeg"}],
    )
    assert check_post(BUCKET, form(fields, filename="cat.jpg"), secrets).key == "uploads/owner/cat.jpg"
    outside = dict(fields, key="uploads/other/cat.jpg")
    error = refusal(outside)
    assert (error.status, error.code) == (403, "AccessDenied")


def test_a_bigger_file_than_the_policy_allows_is_entity_too_large() -> None:
    error = refusal(presigned(), content=b"x" * 101)
    assert (error.status, error.code) == (400, "EntityTooLarge")
    assert error.details == {"ProposedSize": "101", "MaxSizeAllowed": "100"}
    xml = error.to_xml("REQ1").decode()
    assert "<Code>EntityTooLarge</Code>" in xml
    assert "<MaxSizeAllowed>100</MaxSizeAllowed>" in xml
    assert "<RequestId>REQ1</RequestId>" in xml


def test_a_smaller_file_than_the_policy_allows_is_entity_too_small() -> None:
    error = refusal(presigned(), content=b"x" * 9)
    assert (error.status, error.code) == (400, "EntityTooSmall")
    assert error.details["MinSizeAllowed"] == "10"


def test_another_key_than_the_signed_one_is_denied() -> None:
    error = refusal(dict(presigned(), key=KEY + "X"))
    assert (error.status, error.code) == (403, "AccessDenied")
    assert "Policy Condition failed" in error.message
    assert "$key" in error.message


def test_another_content_type_than_the_signed_one_is_denied() -> None:
    error = refusal(dict(presigned(), **{"Content-Type": "text/html"}))
    assert (error.status, error.code) == (403, "AccessDenied")
    assert "Content-Type" in error.message


def test_a_field_the_policy_does_not_mention_is_denied() -> None:
    error = refusal(dict(presigned(), **{"x-amz-meta-owner": "someone"}))
    assert (error.status, error.code) == (403, "AccessDenied")
    assert error.message.endswith("Extra input fields: x-amz-meta-owner")
    assert check_post(BUCKET, form(dict(presigned(), **{"x-ignore-note": "fine"})), secrets).key == KEY


def test_an_expired_policy_is_denied() -> None:
    fields = presigned(expires=60)
    assert check_post(BUCKET, form(fields), secrets, now=datetime.now(UTC)).key == KEY
    error = refusal(fields, now=datetime.now(UTC) + timedelta(seconds=61))
    assert (error.status, error.code) == (403, "AccessDenied")
    assert error.message == "Invalid according to Policy: Policy expired."


def test_a_policy_signed_with_another_secret_does_not_match() -> None:
    error = refusal(presigned(secret="not-the-secret"))
    assert (error.status, error.code) == (403, "SignatureDoesNotMatch")


def test_an_edited_policy_no_longer_matches_its_signature() -> None:
    fields = presigned()
    policy = json.loads(base64.b64decode(fields["policy"]))
    policy["conditions"][0] = ["content-length-range", 10, 10_000_000]
    forged = dict(fields, policy=base64.b64encode(json.dumps(policy).encode()).decode())
    error = refusal(forged, content=b"x" * 1000)
    assert error.code == "SignatureDoesNotMatch"


def test_an_unknown_access_key_is_refused() -> None:
    fields = presigned()
    credential = fields["x-amz-credential"].replace(ACCESS_KEY, "AKIAUNKNOWN000000000")
    error = refusal(dict(fields, **{"x-amz-credential": credential}))
    assert (error.status, error.code) == (403, "InvalidAccessKeyId")


def test_a_post_without_policy_is_anonymous_and_denied() -> None:
    error = refusal({"key": KEY})
    assert (error.status, error.code) == (403, "AccessDenied")


def test_a_post_for_another_bucket_fails_the_bucket_condition() -> None:
    with pytest.raises(S3PostError) as caught:
        check_post("other-bucket", form(presigned()), secrets)
    assert caught.value.code == "AccessDenied"
    assert "bucket" in caught.value.message


def test_a_post_needs_exactly_one_file() -> None:
    body, content_type = encode_multipart_formdata(list(presigned().items()))
    with pytest.raises(S3PostError) as caught:
        parse_form(body, content_type)
    assert (caught.value.status, caught.value.code) == (400, "InvalidArgument")


def test_a_post_that_is_not_multipart_fails_a_precondition() -> None:
    with pytest.raises(S3PostError) as caught:
        parse_form(b"key=a", "application/x-www-form-urlencoded")
    assert (caught.value.status, caught.value.code) == (412, "PreconditionFailed")


def _browser_body(
    fields: list[tuple[str, str]], content: bytes, filename: str = "photo.jpg"
) -> tuple[bytes, str]:
    """A form as requests (and browsers) encode it: the fields, then the file with its content type."""
    import requests

    files: list[tuple[str, tuple[str | None, str | bytes] | tuple[str, bytes, str]]] = [
        (name, (None, value)) for name, value in fields
    ]
    files.append(("file", (filename, content, "image/jpeg")))
    prepared = requests.Request("POST", "http://127.0.0.1:9/bucket", files=files).prepare()
    assert isinstance(prepared.body, bytes)
    return prepared.body, str(prepared.headers["Content-Type"])


def _werkzeug_form(body: bytes, content_type: str) -> PostForm:
    """What werkzeug's multipart parser makes of a body, shaped as parse_form shapes it."""
    boundary = parse_options_header(content_type)[1]["boundary"]
    fields, files = _split_multipart(body, boundary.encode())
    ((_, file_name, content),) = files
    lowered = {name.lower(): value for name, value in MultiDict(fields).items(multi=False)}
    return PostForm(fields=lowered, file_name=file_name, content=content)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\r\n",
        b"--not-the-boundary\r\n",
        bytes(range(256)) * 4_000,
        b"ends with a line break\r\n",
    ],
)
def test_the_in_place_split_finds_what_werkzeug_finds(content: bytes) -> None:
    fields = [
        *presigned().items(),
        ("Key", "duplicate with another case"),
        ("x-amz-meta-note", "caf\u00e9 \u2713"),
        ("empty", ""),
        ("x-amz-meta-note", "second value of a repeated field"),
    ]
    for body, content_type in (
        _browser_body(fields, content),
        encode_multipart_formdata([*fields, ("file", ("photo.jpg", content, "image/jpeg"))]),
    ):
        from werkzeug.http import parse_options_header

        from filepipe.local.services.s3.post import _split_plain_multipart

        boundary = parse_options_header(content_type)[1]["boundary"]
        assert _split_plain_multipart(body, boundary.encode()) is not None
        parsed = parse_form(body, content_type)
        assert parsed == _werkzeug_form(body, content_type)
        assert parsed.content == content
        assert parsed.fields["x-amz-meta-note"] == "caf\u00e9 \u2713"


def test_bodies_the_in_place_split_does_not_expect_go_to_werkzeug() -> None:
    body, content_type = encode_multipart_formdata(
        [("key", "a"), ("file", ("photo.jpg", b"data", "image/jpeg"))], boundary="b0undary"
    )
    unusual = [
        b"a preamble\r\n" + body,
        body.replace(
            b'Content-Disposition: form-data; name="key"', b'Content-Disposition: form-data;\r\n name="key"'
        ),
        body.replace(b'name="key"\r\n', b'name="key"\r\nContent-Type: text/plain; charset=iso-8859-1\r\n'),
    ]
    for odd in unusual:
        assert _split_plain_multipart(odd, b"b0undary") is None
        assert parse_form(odd, content_type) == _werkzeug_form(odd, content_type)
    for broken in (body[:-20], body.replace(b"--b0undary--", b"")):
        assert _split_plain_multipart(broken, b"b0undary") is None
        with pytest.raises(S3PostError) as caught:
            parse_form(broken, content_type)
        assert caught.value.code in {"MalformedPOSTRequest", "InvalidArgument"}


# ---------------------------------------------------------------------------------------------- AWS's rules
def signed_form(
    policy: dict[str, object],
    *,
    region: str = REGION,
    service: str = "s3",
    date: str = "20261122",
    amz_date: str = "20261122T120000Z",
    key: str = KEY,
) -> dict[str, str]:
    """A SigV4 form for a hand-written policy: what a developer's own signing code would send."""
    policy_b64 = base64.b64encode(json.dumps(policy).encode()).decode()
    signing_key = f"AWS4{SECRET}".encode()
    for part in (date, region, service, "aws4_request"):
        signing_key = hmac.new(signing_key, part.encode(), hashlib.sha256).digest()
    return {
        "key": key,
        "Content-Type": "image/jpeg",
        "policy": policy_b64,
        "x-amz-algorithm": "AWS4-HMAC-SHA256",
        "x-amz-credential": f"{ACCESS_KEY}/{date}/{region}/{service}/aws4_request",
        "x-amz-date": amz_date,
        "x-amz-signature": hmac.new(signing_key, policy_b64.encode(), hashlib.sha256).hexdigest(),
    }


CONDITIONS: list[object] = [
    {"bucket": BUCKET},
    {"key": KEY},
    {"Content-Type": "image/jpeg"},
    {"x-amz-algorithm": "AWS4-HMAC-SHA256"},
    ["starts-with", "$x-amz-credential", ACCESS_KEY],
    ["starts-with", "$x-amz-date", "2026"],
]


def test_a_hand_signed_policy_with_an_iso_8601_expiration_is_accepted() -> None:
    for expiration in ("2126-11-22T12:00:00Z", "2126-11-22T12:00:00.000Z"):
        fields = signed_form({"expiration": expiration, "conditions": CONDITIONS})
        assert check_post(BUCKET, form(fields), secrets, region=REGION).key == KEY


def test_a_form_signed_with_signature_version_2_is_refused_as_on_new_buckets() -> None:
    """A developer's mistake: the upload URL's client set to ``signature_version="s3"``."""
    for fields in (
        presigned(signature_version="s3"),
        presigned(signature_version="s3", secret="not-the-secret"),
        dict(presigned(signature_version="s3"), AWSAccessKeyId="AKIAUNKNOWN000000000"),
    ):
        assert "AWSAccessKeyId" in fields
        error = refusal(fields)
        assert (error.status, error.code, error.message) == (
            400,
            "InvalidRequest",
            "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.",
        )


def test_a_credential_scoped_to_another_region_is_refused_naming_the_bucket_s_region() -> None:
    """A developer's mistake: the upload URL signed by a client of another region than the bucket's."""
    fields = presigned(region="eu-west-1")
    error = refusal(fields)
    assert (error.status, error.code) == (400, "InvalidArgument")
    assert error.message == "the region 'eu-west-1' is wrong; expecting 'us-east-1'"
    assert error.details == {
        "ArgumentName": "X-Amz-Credential",
        "ArgumentValue": fields["x-amz-credential"],
        "Region": REGION,
    }
    assert "<Region>us-east-1</Region>" in error.to_xml().decode()


def test_a_credential_scoped_to_another_service_is_refused() -> None:
    fields = signed_form(
        {"expiration": "2126-11-22T12:00:00Z", "conditions": CONDITIONS}, service="execute-api"
    )
    error = refusal(fields)
    assert (error.status, error.code) == (400, "InvalidArgument")
    assert error.message == 'incorrect service "execute-api". This endpoint belongs to "s3".'
    assert error.details["ArgumentName"] == "X-Amz-Credential"


def test_a_credential_date_other_than_the_x_amz_date_is_refused() -> None:
    fields = signed_form(
        {"expiration": "2126-11-22T12:00:00Z", "conditions": CONDITIONS}, amz_date="20261123T000001Z"
    )
    error = refusal(fields)
    assert (error.status, error.code) == (400, "InvalidArgument")
    assert error.message == "Invalid credential date. Date is not the same as X-Amz-Date."


def test_a_policy_without_an_expiration_is_refused() -> None:
    error = refusal(signed_form({"conditions": CONDITIONS}))
    assert (error.status, error.code, error.message) == (
        400,
        "InvalidPolicyDocument",
        "Invalid Policy: Policy missing expiration.",
    )
    missing = refusal(signed_form({"expiration": "2126-11-22T12:00:00Z"}))
    assert (missing.code, missing.message) == (
        "InvalidPolicyDocument",
        "Invalid Policy: Policy missing conditions.",
    )


@pytest.mark.parametrize(
    "expiration",
    [
        "2126-11-22T12:00:00+00:00",  # Python's isoformat() of an aware datetime: not GMT's "Z"
        "2126-11-22 12:00:00",  # str() of a datetime
        "2126-11-22",
        "Sun, 22 Nov 2126 12:00:00 GMT",
        "2126-13-22T12:00:00Z",
        4_950_000_000,
    ],
)
def test_an_expiration_not_in_iso_8601_gmt_is_refused(expiration: object) -> None:
    """A developer's mistake: the policy's expiration written with ``isoformat()`` or ``str()``."""
    error = refusal(signed_form({"expiration": expiration, "conditions": CONDITIONS}))
    assert (error.status, error.code, error.message) == (
        400,
        "InvalidPolicyDocument",
        f"Invalid Policy: Invalid 'expiration' value: '{expiration}'",
    )


def test_the_stored_object_is_written_with_the_signer_s_sigv4_credentials() -> None:
    headers = signed_put_headers("127.0.0.1:9", BUCKET, KEY, REGION, ACCESS_KEY, SECRET)
    assert headers["X-Amz-Content-SHA256"] == "UNSIGNED-PAYLOAD"
    credential = headers["Authorization"].split("Credential=", 1)[1].split(",", 1)[0]
    assert credential.startswith(f"{ACCESS_KEY}/")
    assert credential.endswith(f"/{REGION}/s3/aws4_request")


# ---------------------------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def browser(local_stack: LocalProcess) -> BrowserClient:
    client = BrowserClient(local_stack.web_url)
    client.sign_in(DEMO_EMAIL, DEMO_PASSWORD)
    return client


@pytest.mark.local
def test_a_browser_posting_the_same_form_again_stores_a_new_version_as_s3_does(
    local_stack: LocalProcess, browser: BrowserClient
) -> None:
    """A retry after a lost response: S3 overwrites the key (a new version); it does not refuse it."""
    data = sample_jpeg(64 * 1024)
    ticket = browser.request_upload("retried.jpg", len(data), "image/jpeg")

    first = browser.post_file(ticket, data, "image/jpeg")
    again = browser.post_file(ticket, data, "image/jpeg")

    assert (first.status_code, again.status_code) == (204, 204)
    assert first.headers["x-amz-version-id"] != again.headers["x-amz-version-id"]
    assert again.headers["ETag"] == first.headers["ETag"]
    s3 = boto3.client(
        "s3",
        region_name=REGION,
        endpoint_url=local_stack.aws_endpoint,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
    )
    bucket = ticket.url.rstrip("/").rsplit("/", 1)[-1]
    versions = s3.list_object_versions(Bucket=bucket, Prefix=ticket.fields["key"])["Versions"]
    assert sorted(v["VersionId"] for v in versions) == sorted(
        [first.headers["x-amz-version-id"], again.headers["x-amz-version-id"]]
    )
    assert browser.wait_final(ticket.file_id)["status"] == "READY"


@pytest.mark.local
def test_the_endpoint_refuses_a_form_scoped_to_another_region_than_the_bucket_s(
    local_stack: LocalProcess, browser: BrowserClient
) -> None:
    data = sample_jpeg(16 * 1024)
    ticket = browser.request_upload("elsewhere.jpg", len(data), "image/jpeg")
    bucket = ticket.url.rstrip("/").rsplit("/", 1)[-1]
    elsewhere = boto3.client(
        "s3",
        region_name="eu-west-1",
        endpoint_url=local_stack.aws_endpoint,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        config=Config(signature_version="s3v4"),
    )
    post = elsewhere.generate_presigned_post(
        bucket,
        ticket.fields["key"],
        Fields={"Content-Type": "image/jpeg"},
        Conditions=[{"Content-Type": "image/jpeg"}],
    )

    response = browser.post_file(type(ticket)(ticket.file_id, ticket.url, post["fields"]), data, "image/jpeg")

    assert response.status_code == 400
    assert "<Code>InvalidArgument</Code>" in response.text
    assert "<Message>the region 'eu-west-1' is wrong; expecting 'us-east-1'</Message>" in response.text
    assert "<Region>us-east-1</Region>" in response.text
