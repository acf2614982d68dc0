"""S3 POST Object policies: what S3 accepts and the error codes it answers with, for boto3-made policies."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.config import Config
from urllib3 import encode_multipart_formdata
from werkzeug.datastructures import MultiDict
from werkzeug.http import parse_options_header

from filepipe.local.s3_post import (
    AcceptedUpload,
    PostForm,
    S3PostError,
    _split_multipart,
    _split_plain_multipart,
    check_post,
    object_headers,
    parse_form,
)

ACCESS_KEY = "AKIAEXAMPLELOCAL0001"
SECRET = "local-test-secret"
BUCKET = "ingest-bucket"
KEY = "uploads/owner/01ARZ3NDEKTSV4RRFFQ69G5FAV"


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
) -> dict[str, str]:
    s3 = boto3.client(
        "s3",
        region_name="us-east-1",
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
        check_post(BUCKET, form(fields, content), secrets, now=now)
    return caught.value


@pytest.mark.parametrize("signature_version", ["s3v4", "s3"])
def test_a_boto3_policy_is_accepted_with_its_key_and_headers(signature_version: str) -> None:
    accepted = check_post(BUCKET, form(presigned(signature_version=signature_version)), secrets)
    assert isinstance(accepted, AcceptedUpload)
    assert accepted.key == KEY
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


@pytest.mark.parametrize("signature_version", ["s3v4", "s3"])
def test_a_policy_signed_with_another_secret_does_not_match(signature_version: str) -> None:
    error = refusal(presigned(secret="not-the-secret", signature_version=signature_version))
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
    legacy = dict(presigned(signature_version="s3"), AWSAccessKeyId="AKIAUNKNOWN000000000")
    assert refusal(legacy).code == "InvalidAccessKeyId"


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

        from filepipe.local.s3_post import _split_plain_multipart

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
