"""POST /uploads, multipart completion and abort, through the handler with template-provisioned resources."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from api.uploads import MIN_PART_BYTES, part_count, part_size_for
from common.aws import client as aws_client
from common.model import FILE_ID_PATTERN, Status, ingest_key, new_file_id
from tests.unit.api.support import ApiClient, Seeder, new_user

MIB = 1024 * 1024


def _policy(fields: dict[str, str]) -> dict[str, Any]:
    policy: dict[str, Any] = json.loads(base64.b64decode(fields["policy"]))
    return policy


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_presigned_post_pins_key_size_type_and_expiry(client: ApiClient, seed: Seeder) -> None:
    owner = new_user()
    before = datetime.now(UTC)

    response = client.call(
        "create_upload",
        sub=owner,
        body={"name": "Ferien in Zürich.jpg", "size": 245760, "contentType": "image/jpeg"},
    )

    assert response.status == 201
    ticket = response.body
    assert set(ticket) == {"fileId", "url", "fields", "expiresAt"}
    file_id = ticket["fileId"]
    assert FILE_ID_PATTERN.fullmatch(file_id)
    key = ingest_key(owner, file_id)
    assert ticket["fields"]["key"] == key
    assert ticket["fields"]["Content-Type"] == "image/jpeg"
    assert seed.ingest_bucket in ticket["url"]

    policy = _policy(ticket["fields"])
    expiration = _parse_time(policy["expiration"])
    assert before < expiration <= datetime.now(UTC) + timedelta(minutes=15, seconds=1)
    conditions = policy["conditions"]
    assert {"bucket": seed.ingest_bucket} in conditions
    assert {"key": key} in conditions
    assert {"Content-Type": "image/jpeg"} in conditions
    assert ["content-length-range", 1, 245760] in conditions
    assert not any(isinstance(c, list) and c[0] == "starts-with" for c in conditions), (
        "no key prefix wildcards"
    )
    signing = {next(iter(c)) for c in conditions if isinstance(c, dict)} - {"bucket", "key", "Content-Type"}
    assert signing - {"x-amz-security-token"} == {"x-amz-algorithm", "x-amz-credential", "x-amz-date"}
    assert {"x-amz-algorithm": "AWS4-HMAC-SHA256"} in conditions
    assert ticket["fields"]["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    assert abs(_parse_time(ticket["expiresAt"]) - expiration) < timedelta(seconds=5)

    record = seed.record(owner, file_id)
    assert record is not None
    assert {k: record[k] for k in ("fileId", "ownerId", "name", "size", "contentType", "status")} == {
        "fileId": file_id,
        "ownerId": owner,
        "name": "Ferien in Zürich.jpg",
        "size": 245760,
        "contentType": "image/jpeg",
        "status": "UPLOADING",
    }
    assert record["createdAt"] == record["updatedAt"]
    assert record["createdAt"].endswith("Z")


def test_declared_type_is_normalised_before_the_allow_list(client: ApiClient) -> None:
    response = client.call(
        "create_upload",
        sub=new_user(),
        body={"name": "notes.txt", "size": 10, "contentType": "Text/Plain; charset=utf-8"},
    )

    assert response.status == 201
    assert response.body["fields"]["Content-Type"] == "text/plain"


def test_two_uploads_of_the_same_name_get_their_own_keys(client: ApiClient) -> None:
    owner = new_user()
    body = {"name": "same.png", "size": 5, "contentType": "image/png"}

    first = client.call("create_upload", sub=owner, body=body).body
    second = client.call("create_upload", sub=owner, body=body).body

    assert first["fileId"] != second["fileId"]
    assert first["fields"]["key"] != second["fields"]["key"]


BAD_BODIES: list[tuple[str, str, str]] = [
    ("missing name", json.dumps({"size": 10, "contentType": "image/png"}), "MissingField"),
    ("missing size", json.dumps({"name": "a.png", "contentType": "image/png"}), "MissingField"),
    ("missing type", json.dumps({"name": "a.png", "size": 10}), "MissingField"),
    ("empty object", "{}", "MissingField"),
    ("size 0", json.dumps({"name": "a.png", "size": 0, "contentType": "image/png"}), "InvalidSize"),
    ("negative size", json.dumps({"name": "a.png", "size": -5, "contentType": "image/png"}), "InvalidSize"),
    ("size as text", json.dumps({"name": "a.png", "size": "10", "contentType": "image/png"}), "InvalidSize"),
    (
        "fractional size",
        json.dumps({"name": "a.png", "size": 1.5, "contentType": "image/png"}),
        "InvalidSize",
    ),
    (
        "size over the limit",
        json.dumps({"name": "a.png", "size": 2**30 + 1, "contentType": "image/png"}),
        "FileTooLarge",
    ),
    (
        "10 KB name",
        json.dumps({"name": "a" * 10_240 + ".png", "size": 10, "contentType": "image/png"}),
        "InvalidName",
    ),
    (
        "256-char name",
        json.dumps({"name": "b" * 252 + ".png", "size": 10, "contentType": "image/png"}),
        "InvalidName",
    ),
    (
        "../ in the name",
        json.dumps({"name": "../../etc/passwd", "size": 10, "contentType": "text/plain"}),
        "InvalidName",
    ),
    (
        "backslash",
        json.dumps({"name": "..\\boot.ini", "size": 10, "contentType": "text/plain"}),
        "InvalidName",
    ),
    ("dot", json.dumps({"name": ".", "size": 10, "contentType": "text/plain"}), "InvalidName"),
    ("dot dot", json.dumps({"name": "..", "size": 10, "contentType": "text/plain"}), "InvalidName"),
    ("empty name", json.dumps({"name": "", "size": 10, "contentType": "text/plain"}), "InvalidName"),
    ("blank name", json.dumps({"name": "   ", "size": 10, "contentType": "text/plain"}), "InvalidName"),
    ("newline", json.dumps({"name": "a\nb.txt", "size": 10, "contentType": "text/plain"}), "InvalidName"),
    ("NUL", json.dumps({"name": "a\u0000b.txt", "size": 10, "contentType": "text/plain"}), "InvalidName"),
    (
        "bidi override",
        json.dumps({"name": "invoice\u202efdp.exe", "size": 10, "contentType": "text/plain"}),
        "InvalidName",
    ),
    (
        "type not allowed",
        json.dumps({"name": "a.html", "size": 10, "contentType": "text/html"}),
        "UnsupportedType",
    ),
    (
        "executable",
        json.dumps({"name": "a.exe", "size": 10, "contentType": "application/x-msdownload"}),
        "UnsupportedType",
    ),
    ("empty type", json.dumps({"name": "a.png", "size": 10, "contentType": ""}), "UnsupportedType"),
    ("name not a string", json.dumps({"name": 7, "size": 10, "contentType": "image/png"}), "InvalidName"),
    ("not JSON", "name=a.png&size=10", "InvalidJson"),
    ("truncated JSON", '{"name": "a.png", "size": 1', "InvalidJson"),
    ("JSON array", "[]", "InvalidRequest"),
    ("JSON null", "null", "MissingField"),
    ("JSON string", '"a.png"', "InvalidRequest"),
]


@pytest.mark.parametrize(("case", "raw_body", "code"), BAD_BODIES, ids=[case for case, _, _ in BAD_BODIES])
def test_bad_upload_bodies_answer_400_with_a_code_and_create_nothing(
    client: ApiClient, seed: Seeder, case: str, raw_body: str, code: str
) -> None:
    owner = new_user()

    response = client.call("create_upload", sub=owner, raw_body=raw_body)

    assert response.status == 400, case
    assert response.error_code == code, response.body
    assert response.body["error"]["message"]
    assert seed.records.list_for_owner(owner, 10) == ([], None)


def test_missing_body_is_400(client: ApiClient) -> None:
    event = client.event("create_upload", sub=new_user())
    del event["body"]

    response = client.send("create_upload", event)

    assert response.status == 400
    assert response.body["error"]["code"] == "MissingField"


def test_a_body_that_is_not_json_by_content_type_is_415(client: ApiClient) -> None:
    for content_type in ("text/plain", "multipart/form-data", "application/x-www-form-urlencoded"):
        response = client.call(
            "create_upload",
            sub=new_user(),
            raw_body="name=a.png",
            headers={"content-type": content_type},
        )
        assert response.status == 415, content_type
        assert response.error_code == "UnsupportedMediaType"


def test_error_message_lists_every_problem(client: ApiClient) -> None:
    response = client.call(
        "create_upload", sub=new_user(), body={"name": "../x", "size": 0, "contentType": "image/png"}
    )

    assert response.status == 400
    assert response.error_code == "InvalidName"
    assert "size" in response.body["error"]["message"]
    assert "name" in response.body["error"]["message"]


def test_size_exactly_at_the_limit_is_accepted(client: ApiClient, settings_env: pytest.MonkeyPatch) -> None:
    settings_env.setenv("MAX_FILE_BYTES", "1000")
    owner = new_user()

    at_limit = client.call(
        "create_upload", sub=owner, body={"name": "a.png", "size": 1000, "contentType": "image/png"}
    )
    over = client.call(
        "create_upload", sub=owner, body={"name": "a.png", "size": 1001, "contentType": "image/png"}
    )

    assert at_limit.status == 201
    assert ["content-length-range", 1, 1000] in _policy(at_limit.body["fields"])["conditions"]
    assert over.status == 400
    assert over.error_code == "FileTooLarge"


def test_allow_list_comes_from_the_environment(client: ApiClient, settings_env: pytest.MonkeyPatch) -> None:
    settings_env.setenv("ALLOWED_TYPES", "application/pdf")

    pdf = client.call(
        "create_upload", sub=new_user(), body={"name": "a.pdf", "size": 9, "contentType": "application/pdf"}
    )
    png = client.call(
        "create_upload", sub=new_user(), body={"name": "a.png", "size": 9, "contentType": "image/png"}
    )

    assert pdf.status == 201
    assert png.status == 400
    assert png.error_code == "UnsupportedType"


# ---------------------------------------------------------------- multipart


def test_part_size_keeps_every_plan_within_10000_parts() -> None:
    for size in (1, 5 * MIB, 100 * MIB + 1, 2**30, 80 * 2**30, 5 * 2**40):
        part_size = part_size_for(size)
        assert part_size >= MIN_PART_BYTES
        assert part_size % MIB == 0
        assert part_count(size, part_size) <= 10_000
    assert part_size_for(2**30) == MIN_PART_BYTES


def _plan(client: ApiClient, owner: str, size: int) -> dict[str, Any]:
    response = client.call(
        "create_upload", sub=owner, body={"name": "film.mp4", "size": size, "contentType": "video/mp4"}
    )
    assert response.status == 201
    return dict(response.body)


def _checksum(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _pieces(plan: dict[str, Any], data: bytes) -> dict[int, bytes]:
    size = plan["partSize"]
    return {number: data[(number - 1) * size : number * size] for number in range(1, plan["partCount"] + 1)}


def _sign(client: ApiClient, owner: str, file_id: str, checksums: dict[int, str]) -> Any:
    return client.call(
        "sign_upload_parts",
        sub=owner,
        path={"fileId": file_id},
        body={"parts": [{"partNumber": n, "checksumSha256": c} for n, c in checksums.items()]},
    )


def _put_parts(
    client: ApiClient, owner: str, plan: dict[str, Any], pieces: dict[int, bytes]
) -> list[dict[str, Any]]:
    """Upload parts the way the browser does: SHA-256 first, a URL signed for it, a PUT with its headers."""
    checksums = {number: _checksum(piece) for number, piece in pieces.items()}
    signed = _sign(client, owner, plan["fileId"], checksums)
    assert signed.status == 200, signed.body
    parts = []
    for part in signed.body["parts"]:
        number = part["partNumber"]
        reply = requests.put(part["url"], data=pieces[number], headers=part["headers"], timeout=10)
        assert reply.status_code == 200, reply.text
        parts.append(
            {"partNumber": number, "etag": reply.headers["ETag"], "checksumSha256": checksums[number]}
        )
    return parts


def _complete(client: ApiClient, owner: str, plan: dict[str, Any], parts: list[dict[str, Any]]) -> Any:
    return client.call(
        "complete_upload",
        sub=owner,
        path={"fileId": plan["fileId"]},
        body={"uploadId": plan["uploadId"], "parts": parts},
    )


@pytest.mark.usefixtures("multipart_env")
def test_multipart_plan_then_signed_parts_then_complete_makes_the_object(
    client: ApiClient, seed: Seeder
) -> None:
    owner = new_user()
    data = bytes(range(256)) * (12 * MIB // 256)

    plan = _plan(client, owner, len(data))

    assert plan == {
        "fileId": plan["fileId"],
        "uploadId": plan["uploadId"],
        "partSize": 8 * MIB,
        "partCount": 2,
        "checksumAlgorithm": "SHA256",
    }
    key = ingest_key(owner, plan["fileId"])
    record = seed.record(owner, plan["fileId"])
    assert record is not None
    assert (record["status"], record["uploadId"]) == ("UPLOADING", plan["uploadId"])
    uploads = seed.s3.list_multipart_uploads(Bucket=seed.ingest_bucket, Prefix=key)["Uploads"]
    assert [upload["ChecksumAlgorithm"] for upload in uploads] == ["SHA256"]

    pieces = _pieces(plan, data)
    signed = _sign(client, owner, plan["fileId"], {n: _checksum(p) for n, p in pieces.items()})
    assert signed.status == 200
    assert set(signed.body) == {"parts", "expiresAt"}
    for part in signed.body["parts"]:
        query = parse_qs(urlsplit(part["url"]).query)
        assert key in part["url"]
        assert query["uploadId"] == [plan["uploadId"]]
        assert query["partNumber"] == [str(part["partNumber"])]
        assert query["X-Amz-SignedHeaders"] == ["host;x-amz-checksum-sha256"]
        assert int(query["X-Amz-Expires"][0]) == 3600
        assert part["headers"] == {"x-amz-checksum-sha256": _checksum(pieces[part["partNumber"]])}

    parts = _put_parts(client, owner, plan, pieces)
    done = _complete(client, owner, plan, parts[::-1])

    assert done.status == 200, done.body
    assert done.body["fileId"] == plan["fileId"]
    assert done.body["status"] == "UPLOADING"
    stored = seed.s3.get_object(Bucket=seed.ingest_bucket, Key=key)
    assert stored["Body"].read() == data
    assert stored["ContentType"] == "video/mp4"


@pytest.mark.usefixtures("multipart_env")
def test_storage_refuses_a_part_whose_bytes_do_not_match_its_signed_checksum(
    client: ApiClient, seed: Seeder
) -> None:
    owner = new_user()
    plan = _plan(client, owner, 12 * MIB)
    pieces = _pieces(plan, b"z" * (12 * MIB))
    signed = _sign(client, owner, plan["fileId"], {1: _checksum(pieces[1])}).body["parts"][0]

    corrupted = b"Z" + pieces[1][1:]
    refused = requests.put(signed["url"], data=corrupted, headers=signed["headers"], timeout=10)
    unsigned = requests.put(signed["url"], data=pieces[1], timeout=10)

    assert refused.status_code == 400
    assert "<Code>BadDigest</Code>" in refused.text
    assert "The SHA256 you specified did not match the calculated checksum." in refused.text
    assert unsigned.status_code == 400  # on AWS a 403: the signed header is missing from the request
    assert "<Code>InvalidRequest</Code>" in unsigned.text
    key = ingest_key(owner, plan["fileId"])
    assert (
        seed.s3.list_parts(Bucket=seed.ingest_bucket, Key=key, UploadId=plan["uploadId"]).get("Parts", [])
        == []
    )
    progress = client.call("get_upload", sub=owner, path={"fileId": plan["fileId"]})
    assert (progress.body["parts"], progress.body["missingParts"]) == ([], [1, 2])


@pytest.mark.usefixtures("multipart_env")
def test_resume_lists_the_parts_storage_holds_and_those_still_missing(
    client: ApiClient, seed: Seeder
) -> None:
    owner = new_user()
    data = bytes(range(251)) * (20 * MIB // 251 + 1)
    data = data[: 20 * MIB + 123]
    plan = _plan(client, owner, len(data))
    pieces = _pieces(plan, data)
    assert plan["partCount"] == 3
    sent = _put_parts(client, owner, plan, {3: pieces[3], 1: pieces[1]})

    progress = client.call("get_upload", sub=owner, path={"fileId": plan["fileId"]})

    assert progress.status == 200, progress.body
    assert progress.body == {
        "fileId": plan["fileId"],
        "uploadId": plan["uploadId"],
        "name": "film.mp4",
        "size": len(data),
        "contentType": "video/mp4",
        "partSize": 8 * MIB,
        "partCount": 3,
        "checksumAlgorithm": "SHA256",
        "parts": [
            {"partNumber": n, "size": len(pieces[n]), "etag": part["etag"].strip('"'), "checksumSha256": c}
            for n, part, c in sorted((part["partNumber"], part, part["checksumSha256"]) for part in sent)
        ],
        "missingParts": [2],
    }
    rest = _put_parts(client, owner, plan, {2: pieces[2]})
    held = [{k: part[k] for k in ("partNumber", "etag", "checksumSha256")} for part in progress.body["parts"]]
    done = _complete(client, owner, plan, held + rest)
    assert done.status == 200, done.body
    stored = seed.s3.get_object(Bucket=seed.ingest_bucket, Key=ingest_key(owner, plan["fileId"]))
    assert stored["Body"].read() == data
    finished = client.call("get_upload", sub=owner, path={"fileId": plan["fileId"]})
    assert finished.status == 404  # the record still says UPLOADING until the workflow takes it
    assert finished.error_code == "UploadNotFound"


@pytest.mark.usefixtures("multipart_env")
def test_resume_pages_through_every_part_storage_holds(
    client: ApiClient, seed: Seeder, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = new_user()
    plan = _plan(client, owner, 3 * 8 * MIB)
    pieces = _pieces(plan, b"p" * (3 * 8 * MIB))
    _put_parts(client, owner, plan, pieces)
    pages: list[int] = []
    api_s3 = type(aws_client("s3"))  # the API function's own client
    list_parts = api_s3.list_parts

    def two_at_a_time(self: Any, **kwargs: Any) -> Any:
        page = list_parts(self, **{**kwargs, "MaxParts": 2})
        pages.append(len(page.get("Parts", [])))
        return page

    monkeypatch.setattr(api_s3, "list_parts", two_at_a_time)
    progress = client.call("get_upload", sub=owner, path={"fileId": plan["fileId"]})

    assert pages == [2, 1]
    assert [part["partNumber"] for part in progress.body["parts"]] == [1, 2, 3]
    assert progress.body["missingParts"] == []


@pytest.mark.usefixtures("multipart_env")
def test_a_part_of_the_wrong_size_counts_as_missing(client: ApiClient) -> None:
    owner = new_user()
    plan = _plan(client, owner, 12 * MIB)
    short = b"s" * (5 * MIB)
    _put_parts(client, owner, plan, {1: short})

    progress = client.call("get_upload", sub=owner, path={"fileId": plan["fileId"]})

    assert (progress.body["parts"], progress.body["missingParts"]) == ([], [1, 2])


@pytest.mark.usefixtures("multipart_env")
def test_signing_refuses_bad_checksums_and_part_numbers(client: ApiClient) -> None:
    owner = new_user()
    plan = _plan(client, owner, 12 * MIB)
    good = _checksum(b"x")
    path = {"fileId": plan["fileId"]}

    for parts, code in (
        ([{"partNumber": 1, "checksumSha256": "not base64!"}], "InvalidChecksum"),
        ([{"partNumber": 1, "checksumSha256": base64.b64encode(b"short").decode()}], "InvalidChecksum"),
        ([{"partNumber": 1, "checksumSha256": good.rstrip("=")}], "InvalidChecksum"),
        ([{"partNumber": 1, "checksumSha256": good.replace("=", "A")}], "InvalidChecksum"),
        ([{"partNumber": 1}], "MissingField"),
        ([{"partNumber": 3, "checksumSha256": good}], "InvalidParts"),
        ([{"partNumber": 0, "checksumSha256": good}], "InvalidParts"),
        ([{"partNumber": 1, "checksumSha256": good}] * 2, "InvalidParts"),
        ([], "InvalidParts"),
        ([{"partNumber": 1, "checksumSha256": good}] * 101, "InvalidParts"),
    ):
        response = client.call("sign_upload_parts", sub=owner, path=path, body={"parts": parts})
        assert (response.status, response.error_code) == (400, code), (parts[:1], response.body)


@pytest.mark.usefixtures("multipart_env")
def test_complete_refuses_parts_that_do_not_add_up_to_the_declared_size(
    client: ApiClient, seed: Seeder
) -> None:
    owner = new_user()
    plan = _plan(client, owner, 12 * MIB)
    parts = _put_parts(client, owner, plan, _pieces(plan, b"x" * (12 * MIB - 1)))

    response = _complete(client, owner, plan, parts)

    assert response.status == 400
    assert response.error_code == "SizeMismatch"
    assert seed.keys(seed.ingest_bucket, ingest_key(owner, plan["fileId"])) == []


@pytest.mark.usefixtures("multipart_env")
def test_complete_refuses_unknown_etags_wrong_checksums_missing_parts_and_duplicates(
    client: ApiClient,
) -> None:
    owner = new_user()
    plan = _plan(client, owner, 12 * MIB)
    parts = _put_parts(client, owner, plan, _pieces(plan, b"y" * (12 * MIB)))
    path = {"fileId": plan["fileId"]}

    wrong_etag = [parts[0], {**parts[1], "etag": '"00000000000000000000000000000000"'}]
    wrong_checksum = [parts[0], {**parts[1], "checksumSha256": _checksum(b"other bytes")}]
    missing = [parts[0], {**parts[1], "partNumber": 3}]
    no_checksum = [parts[0], {k: v for k, v in parts[1].items() if k != "checksumSha256"}]
    for bad_parts, code in (
        (wrong_etag, "InvalidParts"),
        (wrong_checksum, "InvalidParts"),
        (missing, "InvalidParts"),
        (no_checksum, "MissingField"),
        ([parts[0], parts[0]], "InvalidParts"),
        ([], "InvalidParts"),
        ([{**parts[0], "partNumber": 0}], "InvalidParts"),
        ([{**parts[0], "partNumber": 10_001}], "InvalidParts"),
    ):
        response = client.call(
            "complete_upload", sub=owner, path=path, body={"uploadId": plan["uploadId"], "parts": bad_parts}
        )
        assert response.status == 400, bad_parts
        assert response.error_code == code, response.body

    for body, code in (({"parts": parts}, "MissingField"), ({"uploadId": plan["uploadId"]}, "MissingField")):
        response = client.call("complete_upload", sub=owner, path=path, body=body)
        assert (response.status, response.error_code) == (400, code)

    wrong_upload = client.call(
        "complete_upload", sub=owner, path=path, body={"uploadId": "other", "parts": parts}
    )
    assert (wrong_upload.status, wrong_upload.error_code) == (404, "UploadNotFound")


@pytest.mark.usefixtures("multipart_env")
def test_abort_drops_parts_and_record(client: ApiClient, seed: Seeder) -> None:
    owner = new_user()
    plan = _plan(client, owner, 12 * MIB)
    key = ingest_key(owner, plan["fileId"])

    response = client.call("abort_upload", sub=owner, path={"fileId": plan["fileId"]})

    assert response.status == 204
    assert response.body is None
    assert seed.record(owner, plan["fileId"]) is None
    uploads = seed.s3.list_multipart_uploads(Bucket=seed.ingest_bucket, Prefix=key).get("Uploads", [])
    assert uploads == []
    again = client.call("abort_upload", sub=owner, path={"fileId": plan["fileId"]})
    assert (again.status, again.error_code) == (404, "FileNotFound")
    for name, body in (
        ("get_upload", None),
        ("sign_upload_parts", {"parts": [{"partNumber": 1, "checksumSha256": _checksum(b"")}]}),
    ):
        gone = client.call(
            name, sub=owner, path={"fileId": plan["fileId"]}, **({"body": body} if body else {})
        )
        assert (gone.status, gone.error_code) == (404, "FileNotFound")


@pytest.mark.usefixtures("multipart_env")
def test_an_upload_storage_no_longer_holds_is_404_to_resume(client: ApiClient, seed: Seeder) -> None:
    owner = new_user()
    plan = _plan(client, owner, 12 * MIB)
    # What S3's lifecycle rule does a day after the upload started: the parts go, the record stays.
    seed.s3.abort_multipart_upload(
        Bucket=seed.ingest_bucket, Key=ingest_key(owner, plan["fileId"]), UploadId=plan["uploadId"]
    )

    response = client.call("get_upload", sub=owner, path={"fileId": plan["fileId"]})

    assert (response.status, response.error_code) == (404, "UploadNotFound")
    assert "expired" in response.body["error"]["message"]


def test_abort_of_a_single_part_upload_removes_what_was_sent(client: ApiClient, seed: Seeder) -> None:
    owner = new_user()
    ticket = client.call(
        "create_upload", sub=owner, body={"name": "a.txt", "size": 5, "contentType": "text/plain"}
    ).body
    key = ingest_key(owner, ticket["fileId"])
    seed.s3.put_object(Bucket=seed.ingest_bucket, Key=key, Body=b"hello")

    response = client.call("abort_upload", sub=owner, path={"fileId": ticket["fileId"]})

    assert response.status == 204
    assert seed.keys(seed.ingest_bucket, key) == []
    assert seed.record(owner, ticket["fileId"]) is None


def test_a_single_part_upload_has_nothing_to_resume_or_sign(client: ApiClient) -> None:
    owner = new_user()
    ticket = client.call(
        "create_upload", sub=owner, body={"name": "a.txt", "size": 5, "contentType": "text/plain"}
    ).body
    path = {"fileId": ticket["fileId"]}

    resume = client.call("get_upload", sub=owner, path=path)
    sign = client.call(
        "sign_upload_parts",
        sub=owner,
        path=path,
        body={"parts": [{"partNumber": 1, "checksumSha256": _checksum(b"")}]},
    )

    assert (resume.status, resume.error_code) == (404, "UploadNotFound")
    assert (sign.status, sign.error_code) == (404, "UploadNotFound")


def test_an_upload_begun_without_part_checksums_cannot_be_resumed(client: ApiClient, seed: Seeder) -> None:
    owner = new_user()
    file_id = new_file_id()
    seed.records.create(
        {
            "fileId": file_id,
            "ownerId": owner,
            "name": "film.mp4",
            "size": 12 * MIB,
            "contentType": "video/mp4",
            "status": "UPLOADING",
            "createdAt": "2024-11-22T11:30:00.000Z",
            "updatedAt": "2024-11-22T11:30:00.000Z",
            "uploadId": "begun-before-checksums",
            "partSize": 8 * MIB,
        }
    )

    response = client.call("get_upload", sub=owner, path={"fileId": file_id})

    assert (response.status, response.error_code) == (409, "UploadNotResumable")


def test_abort_and_complete_refuse_a_finished_upload(client: ApiClient, seed: Seeder) -> None:
    owner = new_user()
    file_id = seed.file(owner, Status.READY)
    checksum = _checksum(b"")

    abort = client.call("abort_upload", sub=owner, path={"fileId": file_id})
    complete = client.call(
        "complete_upload",
        sub=owner,
        path={"fileId": file_id},
        body={"uploadId": "u", "parts": [{"partNumber": 1, "etag": "e", "checksumSha256": checksum}]},
    )
    resume = client.call("get_upload", sub=owner, path={"fileId": file_id})
    sign = client.call(
        "sign_upload_parts",
        sub=owner,
        path={"fileId": file_id},
        body={"parts": [{"partNumber": 1, "checksumSha256": checksum}]},
    )

    for response in (abort, complete, resume, sign):
        assert (response.status, response.error_code) == (409, "UploadFinished")
    record = seed.record(owner, file_id)
    assert record is not None
    assert record["status"] == "READY"


@pytest.mark.usefixtures("multipart_env")
def test_another_users_upload_is_404_and_untouched(client: ApiClient, seed: Seeder) -> None:
    owner, intruder = new_user(), new_user()
    plan = _plan(client, owner, 12 * MIB)
    path = {"fileId": plan["fileId"]}
    before = seed.record(owner, plan["fileId"])
    checksum = _checksum(b"")

    abort = client.call("abort_upload", sub=intruder, path=path)
    complete = client.call(
        "complete_upload",
        sub=intruder,
        path=path,
        body={
            "uploadId": plan["uploadId"],
            "parts": [{"partNumber": 1, "etag": "e", "checksumSha256": checksum}],
        },
    )
    resume = client.call("get_upload", sub=intruder, path=path)
    sign = client.call(
        "sign_upload_parts",
        sub=intruder,
        path=path,
        body={"parts": [{"partNumber": 1, "checksumSha256": checksum}]},
    )
    missing = client.call("abort_upload", sub=intruder, path={"fileId": "01JD8M3Q6W9Z2X4C5V7B8N0K1P"})

    assert (abort.status, abort.body) == (missing.status, missing.body) == (404, abort.body)
    for response in (complete, resume, sign):
        assert (response.status, response.body) == (404, abort.body)
    assert seed.record(owner, plan["fileId"]) == before
    uploads = seed.s3.list_multipart_uploads(Bucket=seed.ingest_bucket).get("Uploads", [])
    assert plan["uploadId"] in {upload["UploadId"] for upload in uploads}


def test_the_record_keeps_the_verified_email_for_notifications(client: ApiClient, seed: Seeder) -> None:
    owner = new_user()
    response = client.call(
        "create_upload", sub=owner, body={"name": "notes.txt", "size": 10, "contentType": "text/plain"}
    )

    record = seed.records.get(owner, response.body["fileId"])
    assert record is not None
    assert record["ownerEmail"] == "alice@example.com"
