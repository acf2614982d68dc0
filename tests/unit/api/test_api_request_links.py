"""Request links: owners create, list, change and revoke them; guests upload through them within their
limits, follow their own uploads by receipt, and learn nothing else of the owner's."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

import api.handler
import api.passwords
import api.public_handler
from api.attempts import ATTEMPTS_PER_CLIENT
from api.passwords import ScryptCost
from api.request_links import receipt_hash
from api.sharing import new_share_token
from common.model import Status
from tests.unit.api.support import ApiClient, ApiResponse, Seeder, new_user

PASSWORD = "correct horse"
CHEAP = ScryptCost(n=2**4, r=1, p=1)
MIB = 1024 * 1024
SINGLE_PART_LIMIT = 104857600  # the template's default SinglePartLimitBytes


class _Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(autouse=True)
def cheap_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hashes made in these tests cost microseconds; verification reads the cost from each hash."""
    monkeypatch.setattr(api.passwords, "DEFAULT_COST", CHEAP)


@pytest.fixture
def guest_clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    """The public function's clock, a minute into a rate-limit window so no window ends mid-test."""
    now = datetime.now(UTC)
    clock = _Clock(
        now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0) + timedelta(minutes=1)
    )
    guest_uploads = api.public_handler.guest_uploads
    monkeypatch.setattr(api.public_handler, "guest_uploads", lambda: guest_uploads(clock))
    return clock


def _create(client: ApiClient, owner: str, **body: object) -> dict[str, Any]:
    response = client.call("create_request_link", sub=owner, body=body)
    assert response.status == 201, response.body
    return dict(response.body)


def _guest(
    client: ApiClient,
    name: str,
    token: str,
    body: Any = None,
    address: str = "203.0.113.10",
    **path: str,
) -> ApiResponse:
    event = client.event(name, path={"token": token, **path}, **({} if body is None else {"body": body}))
    event["requestContext"]["http"]["sourceIp"] = address
    response = client.send(name, event)
    assert response.status < 500, response.body
    return response


def _upload(
    client: ApiClient,
    token: str,
    size: int = 1000,
    name: str = "contract.pdf",
    content_type: str = "application/pdf",
    **extra: object,
) -> ApiResponse:
    body = {"name": name, "size": size, "contentType": content_type, **extra}
    return _guest(client, "create_guest_upload", token, body)


def _link(seed: Seeder, request_id: str) -> dict[str, Any]:
    [item] = [
        item
        for item in seed.table_items()
        if item["pk"]["S"] == f"REQUEST#{request_id}" and item["sk"]["S"] == "REQUEST"
    ]
    return item


# ---------------------------------------------------------------- the owner's side


def test_an_owner_creates_lists_changes_and_revokes_request_links(
    client: ApiClient, seed: Seeder, guest_clock: _Clock
) -> None:
    owner = new_user()

    created = _create(client, owner, maxFiles=3, maxBytes=5000, note="Please send the signed contract.")

    assert created["url"].endswith(f"/r/{created['token']}")
    assert (created["maxFiles"], created["maxBytes"], created["passwordProtected"]) == (3, 5000, False)
    assert created["token"] not in json.dumps(seed.table_items())  # only its hash is kept
    assert _upload(client, created["token"], size=1200).status == 201
    [listed] = client.call("list_request_links", sub=owner).body["items"]
    assert listed == {
        "requestId": created["requestId"],
        "createdAt": listed["createdAt"],
        "expiresAt": created["expiresAt"],
        "maxFiles": 3,
        "maxBytes": 5000,
        "filesReceived": 1,
        "bytesReceived": 1200,
        "state": "ACTIVE",
        "passwordProtected": False,
        "note": "Please send the signed contract.",
    }
    assert client.call("list_request_links", sub=new_user()).body == {"items": []}

    changed = client.call(
        "update_request_link",
        sub=owner,
        path={"token": created["requestId"]},
        body={"expiresInSeconds": 3600},
    )
    assert changed.status == 200
    assert changed.body["expiresAt"] < created["expiresAt"]
    stranger = client.call(
        "update_request_link",
        sub=new_user(),
        path={"token": created["token"]},
        body={"expiresInSeconds": 3600},
    )
    assert (stranger.status, stranger.error_code) == (404, "RequestNotFound")
    assert client.call("revoke_request_link", sub=new_user(), path={"token": created["token"]}).status == 404

    assert client.call("revoke_request_link", sub=owner, path={"token": created["token"]}).status == 204

    assert client.call("list_request_links", sub=owner).body == {"items": []}
    assert client.call("revoke_request_link", sub=owner, path={"token": created["requestId"]}).status == 404
    assert _guest(client, "get_request_link", created["token"]).status == 404
    assert not [item for item in seed.table_items() if item["pk"]["S"] == f"REQUEST#{created['requestId']}"]


def test_a_request_link_has_sensible_defaults(client: ApiClient) -> None:
    response = client.call("create_request_link", sub=new_user(), raw_body="")

    assert response.status == 201
    assert (response.body["maxFiles"], response.body["maxBytes"]) == (10, 1024**3)
    assert "note" not in response.body


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"maxFiles": 0}, "InvalidMaxFiles"),
        ({"maxFiles": 1001}, "InvalidMaxFiles"),
        ({"maxFiles": "3"}, "InvalidMaxFiles"),
        ({"maxFiles": 2.5}, "InvalidMaxFiles"),
        ({"maxBytes": 0}, "InvalidMaxBytes"),
        ({"maxBytes": 1024**4 + 1}, "InvalidMaxBytes"),
        ({"maxBytes": None}, "InvalidMaxBytes"),
        ({"expiresInSeconds": 59}, "InvalidExpiry"),
        ({"expiresInSeconds": 31 * 86400}, "InvalidExpiry"),
        ({"password": "short"}, "InvalidPassword"),
        ({"password": " " * 8}, "InvalidPassword"),
        ({"note": ""}, "InvalidNote"),
        ({"note": "x" * 1001}, "InvalidNote"),
        ({"note": "open \u202eexe.pdf"}, "InvalidNote"),
        ({"note": "bell \u0007"}, "InvalidNote"),
        ({"note": 42}, "InvalidNote"),
    ],
)
def test_bad_request_link_settings_are_400(client: ApiClient, body: object, code: str) -> None:
    response = client.call("create_request_link", sub=new_user(), body=body)

    assert (response.status, response.error_code) == (400, code)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "NothingToChange"),
        ({"expiresInSeconds": None}, "InvalidExpiry"),
        ({"expiresInSeconds": 0}, "InvalidExpiry"),
        ({"maxFiles": None}, "InvalidMaxFiles"),
        ({"maxFiles": 0}, "InvalidMaxFiles"),
        ({"maxBytes": None}, "InvalidMaxBytes"),
        ({"maxBytes": "5"}, "InvalidMaxBytes"),
        ({"password": "short"}, "InvalidPassword"),
        ({"note": ""}, "InvalidNote"),
    ],
)
def test_bad_request_link_changes_are_400(client: ApiClient, body: object, code: str) -> None:
    owner = new_user()
    created = _create(client, owner)

    response = client.call("update_request_link", sub=owner, path={"token": created["requestId"]}, body=body)

    assert (response.status, response.error_code) == (400, code)


def test_a_note_keeps_its_line_breaks(client: ApiClient, guest_clock: _Clock) -> None:
    note = "Hello,\n\tplease send the scans.\nThanks"
    created = _create(client, new_user(), note=note)

    assert _guest(client, "get_request_link", created["token"]).body["note"] == note


# ---------------------------------------------------------------- the guest's side


def test_a_guest_sees_the_note_and_what_is_left_and_nothing_of_the_owners(
    client: ApiClient, seed: Seeder, guest_clock: _Clock
) -> None:
    owner = new_user()
    seed.file(owner, Status.READY, name="private.jpg")
    created = _create(client, owner, maxFiles=4, maxBytes=10_000, note="For the Q3 audit")

    looked = _guest(client, "get_request_link", created["token"])

    assert looked.status == 200
    assert looked.body == {
        "expiresAt": created["expiresAt"],
        "filesLeft": 4,
        "bytesLeft": 10_000,
        "note": "For the Q3 audit",
    }
    assert owner not in json.dumps(looked.body)


def test_a_guest_upload_lands_in_the_owners_files_marked_and_only_its_receipt_shows_its_status(
    client: ApiClient, seed: Seeder, guest_clock: _Clock
) -> None:
    owner = new_user()
    created = _create(client, owner)

    issued = _upload(client, created["token"], size=48213)

    assert issued.status == 201
    assert set(issued.body) == {"fileId", "url", "fields", "expiresAt", "receipt"}
    file_id, receipt = issued.body["fileId"], issued.body["receipt"]
    assert issued.body["fields"]["key"] == f"uploads/{owner}/{file_id}"
    record = seed.record(owner, file_id)
    assert record is not None
    assert (record["requestId"], record["status"]) == (created["requestId"], "UPLOADING")
    assert record["receiptHash"] == receipt_hash(receipt)
    assert receipt not in json.dumps(seed.table_items())
    [listed] = client.call("list_files", sub=owner).body["items"]
    assert (listed["fileId"], listed["requestId"]) == (file_id, created["requestId"])
    shown = client.call("get_file", sub=owner, path={"fileId": file_id}).body
    assert shown["requestId"] == created["requestId"]

    status = _guest(
        client, "get_guest_uploads", created["token"], {"uploads": [{"fileId": file_id, "receipt": receipt}]}
    )
    assert status.status == 200
    assert status.body == {
        "items": [{"fileId": file_id, "name": "contract.pdf", "size": 48213, "status": "UPLOADING"}]
    }
    wrong = _guest(
        client,
        "get_guest_uploads",
        created["token"],
        {"uploads": [{"fileId": file_id, "receipt": new_share_token()}]},
    )
    other_link = _create(client, owner)
    elsewhere = _guest(
        client,
        "get_guest_uploads",
        other_link["token"],
        {"uploads": [{"fileId": file_id, "receipt": receipt}]},
    )
    assert (wrong.status, wrong.error_code) == (404, "RequestNotFound")
    assert (elsewhere.status, elsewhere.body) == (404, wrong.body)


def test_the_guest_sees_each_outcome_and_never_a_download_link(
    client: ApiClient, seed: Seeder, guest_clock: _Clock
) -> None:
    owner = new_user()
    created = _create(client, owner)
    refs = []
    for _ in range(3):
        issued = _upload(client, created["token"]).body
        refs.append({"fileId": issued["fileId"], "receipt": issued["receipt"]})
    outcomes = [
        (Status.READY, None),
        (Status.QUARANTINED, {"code": "MALWARE_FOUND", "message": "Malware detected: Eicar-Test-Signature"}),
        (Status.FAILED, {"code": "ScannerUnavailable", "message": "clamd at 10.0.3.7:3310 is down"}),
    ]
    table = seed.records
    for ref, (status, error) in zip(refs, outcomes, strict=True):
        key = table.key(owner, ref["fileId"])
        values: dict[str, Any] = {":s": {"S": status.value}, ":c": {"S": f"files/{owner}/x/original"}}
        update = "SET #s = :s, cleanKey = :c"
        if error:
            values[":e"] = {"M": {name: {"S": text} for name, text in error.items()}}
            update += ", #e = :e"
        seed.stack.client("dynamodb").update_item(
            TableName=seed.stack.physical("FilesTable"),
            Key=key,
            UpdateExpression=update,
            ExpressionAttributeNames={"#s": "status", **({"#e": "error"} if error else {})},
            ExpressionAttributeValues=values,
        )

    answer = _guest(client, "get_guest_uploads", created["token"], {"uploads": refs})

    assert [item["status"] for item in answer.body["items"]] == ["READY", "QUARANTINED", "FAILED"]
    assert answer.body["items"][1]["error"]["message"] == "Malware detected: Eicar-Test-Signature"
    assert "error" not in answer.body["items"][2]  # a failure's details are the operator's, not the guest's
    text = json.dumps(answer.body)
    assert "url" not in text.lower()
    assert "files/" not in text
    assert owner not in text


def test_limits_are_exact_at_the_boundary(client: ApiClient, seed: Seeder, guest_clock: _Clock) -> None:
    owner = new_user()
    created = _create(client, owner, maxFiles=3, maxBytes=100)
    token = created["token"]

    assert _upload(client, token, size=60).status == 201
    too_big = _upload(client, token, size=41)
    assert (too_big.status, too_big.error_code) == (400, "RequestLimitExceeded")
    assert "40 more" in too_big.body["error"]["message"]
    assert _guest(client, "get_request_link", token).body["bytesLeft"] == 40
    assert _upload(client, token, size=40).status == 201  # exactly maxBytes

    used_up = _upload(client, token, size=1)
    assert (used_up.status, used_up.error_code) == (404, "RequestNotFound")
    assert _guest(client, "get_request_link", token).status == 404
    [listed] = client.call("list_request_links", sub=owner).body["items"]
    assert (listed["filesReceived"], listed["bytesReceived"], listed["state"]) == (2, 100, "USED_UP")
    link = _link(seed, created["requestId"])
    assert (link["filesLeft"], link["bytesLeft"]) == ({"N": "1"}, {"N": "0"})


def test_the_file_count_is_exact_at_the_boundary(client: ApiClient, guest_clock: _Clock) -> None:
    token = _create(client, new_user(), maxFiles=2, maxBytes=10_000)["token"]

    answers = [_upload(client, token, size=10).status for _ in range(3)]

    assert answers == [201, 201, 404]


def test_an_upload_the_service_refuses_takes_nothing_from_the_link(
    client: ApiClient, seed: Seeder, guest_clock: _Clock
) -> None:
    owner = new_user()
    created = _create(client, owner, maxFiles=1, maxBytes=1000)

    refused = _upload(
        client, created["token"], size=10, name="tool.exe", content_type="application/x-msdownload"
    )

    assert (refused.status, refused.error_code) == (400, "UnsupportedType")
    assert _guest(client, "get_request_link", created["token"]).body["filesLeft"] == 1
    assert _upload(client, created["token"], size=10).status == 201
    assert client.call("list_files", sub=owner).body["items"][0]["requestId"] == created["requestId"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"name": "a.pdf", "size": 0, "contentType": "application/pdf"}, "InvalidSize"),
        ({"name": "a.pdf", "size": "10", "contentType": "application/pdf"}, "InvalidSize"),
        ({"name": "../a.pdf", "size": 10, "contentType": "application/pdf"}, "InvalidName"),
        ({"name": "a.pdf", "size": 10}, "MissingField"),
        ({"name": "a.pdf", "size": 10, "contentType": "application/pdf", "password": ""}, "InvalidPassword"),
    ],
)
def test_bad_guest_uploads_are_400(client: ApiClient, guest_clock: _Clock, body: object, code: str) -> None:
    token = _create(client, new_user())["token"]

    response = _guest(client, "create_guest_upload", token, body)

    assert (response.status, response.error_code) == (400, code)


@pytest.mark.parametrize(
    ("name", "body", "code"),
    [
        ("get_guest_uploads", {"uploads": []}, "InvalidUploads"),
        ("get_guest_uploads", {"uploads": [{"fileId": "nope", "receipt": "x" * 43}]}, "InvalidUploads"),
        (
            "get_guest_uploads",
            {"uploads": [{"fileId": "01JD8M3Q6W9Z2X4C5V7B8N0K1P", "receipt": "short"}]},
            "InvalidUploads",
        ),
        ("sign_guest_upload_parts", {"parts": [{"partNumber": 1, "checksumSha256": "x"}]}, "InvalidChecksum"),
        (
            "sign_guest_upload_parts",
            {"parts": [{"partNumber": 1, "checksumSha256": "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="}]},
            "MissingField",
        ),
        ("complete_guest_upload", {"receipt": "x" * 43, "uploadId": "u", "parts": []}, "InvalidParts"),
        ("get_guest_upload_progress", {}, "MissingField"),
        ("get_guest_upload_progress", {"receipt": "short"}, "InvalidReceipt"),
    ],
)
def test_bad_receipt_calls_are_400(
    client: ApiClient, guest_clock: _Clock, name: str, body: object, code: str
) -> None:
    token = _create(client, new_user())["token"]

    response = _guest(client, name, token, body, fileId="01JD8M3Q6W9Z2X4C5V7B8N0K1P")

    assert (response.status, response.error_code) == (400, code)


def test_a_large_guest_upload_goes_multipart_with_its_receipt(
    client: ApiClient, seed: Seeder, guest_clock: _Clock
) -> None:
    owner = new_user()
    token = _create(client, owner, maxBytes=1024**3)["token"]
    checksum = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="

    plan = _upload(client, token, size=SINGLE_PART_LIMIT + 1)

    assert plan.status == 201
    assert {"fileId", "uploadId", "partSize", "partCount", "receipt"} <= set(plan.body)
    file_id, receipt = plan.body["fileId"], plan.body["receipt"]
    parts = {"parts": [{"partNumber": 1, "checksumSha256": checksum}]}
    signed = _guest(client, "sign_guest_upload_parts", token, {**parts, "receipt": receipt}, fileId=file_id)
    assert signed.status == 200
    assert signed.body["parts"][0]["headers"] == {"x-amz-checksum-sha256": checksum}
    forged = _guest(
        client, "sign_guest_upload_parts", token, {**parts, "receipt": new_share_token()}, fileId=file_id
    )
    assert (forged.status, forged.error_code) == (404, "RequestNotFound")
    finish = {
        "receipt": receipt,
        "uploadId": plan.body["uploadId"],
        "parts": [{"partNumber": 1, "etag": '"nope"', "checksumSha256": checksum}],
    }
    unsent = _guest(client, "complete_guest_upload", token, finish, fileId=file_id)
    assert (unsent.status, unsent.error_code) == (400, "InvalidParts")
    owners_own = client.call(
        "create_upload", sub=owner, body={"name": "a.pdf", "size": 5, "contentType": "application/pdf"}
    )
    not_a_guests = _guest(
        client,
        "complete_guest_upload",
        token,
        {**finish, "receipt": receipt},
        fileId=owners_own.body["fileId"],
    )
    assert (not_a_guests.status, not_a_guests.error_code) == (404, "RequestNotFound")


def test_guest_uploads_count_against_the_owners_quota(client: ApiClient, guest_clock: _Clock) -> None:
    owner = new_user()
    token = _create(client, owner)["token"]

    assert _upload(client, token, size=4321).status == 201

    usage = client.call("get_usage", sub=owner).body
    assert usage["reservedBytes"] == 4321
    assert usage["uploadsThisHour"] == 1


def test_a_guest_is_told_the_owner_has_no_room_without_learning_their_storage(
    client: ApiClient, settings_env: pytest.MonkeyPatch, guest_clock: _Clock
) -> None:
    settings_env.setenv("USER_STORAGE_QUOTA_BYTES", "2500")
    owner = new_user()
    token = _create(client, owner, maxFiles=3)["token"]
    assert _upload(client, token, size=2000).status == 201

    refused = _upload(client, token, size=1000)

    assert (refused.status, refused.error_code) == (409, "RecipientQuotaExceeded")
    assert not re.search(r"\d", refused.body["error"]["message"])  # no sizes, used or free
    assert _guest(client, "get_request_link", token).body["filesLeft"] == 2  # given back to the link


def test_a_guest_past_the_owners_hourly_uploads_is_told_when_to_try_again(
    client: ApiClient, settings_env: pytest.MonkeyPatch, guest_clock: _Clock
) -> None:
    settings_env.setenv("USER_UPLOADS_PER_HOUR", "1")
    owner = new_user()
    token = _create(client, owner)["token"]
    assert _upload(client, token).status == 201

    refused = _upload(client, token)

    assert (refused.status, refused.error_code) == (429, "UploadRateExceeded")
    assert int(refused.headers["Retry-After"]) > 0
    assert "this link takes no more uploads now" in refused.body["error"]["message"]
    assert _guest(client, "get_request_link", token).body["filesLeft"] == 9


# ---------------------------------------------------------------- links that do not work


def test_unknown_revoked_expired_used_up_and_wrong_password_answers_are_identical(
    client: ApiClient, guest_clock: _Clock
) -> None:
    owner = new_user()
    protected = _create(client, owner, password=PASSWORD)
    revoked = _create(client, owner, password=PASSWORD)
    client.call("revoke_request_link", sub=owner, path={"token": revoked["requestId"]})
    used_up = _create(client, owner, password=PASSWORD, maxFiles=1)
    assert _upload(client, used_up["token"], password=PASSWORD).status == 201
    expiring = _create(client, owner, password=PASSWORD, expiresInSeconds=3600)
    tokens = {
        "unknown": new_share_token(),
        "revoked": revoked["token"],
        "used up": used_up["token"],
        "wrong password": protected["token"],
        "malformed": "not a token!",
    }

    def answers_for(kind: str, token: str) -> dict[tuple[str, str], str]:
        password = "not the password" if kind == "wrong password" else PASSWORD
        answers = {}
        for route, body in (
            ("unlock_request_link", {"password": password}),
            (
                "create_guest_upload",
                {"name": "a.pdf", "size": 10, "contentType": "application/pdf", "password": password},
            ),
        ):
            response = _guest(client, route, token, body)
            answers[(kind, route)] = json.dumps(
                [response.status, response.headers, response.body], sort_keys=True
            )
        if kind != "wrong password":
            response = _guest(client, "get_request_link", token)
            answers[(kind, "get")] = json.dumps(
                [response.status, response.headers, response.body], sort_keys=True
            )
        return answers

    answers: dict[tuple[str, str], str] = {}
    for kind, token in tokens.items():
        answers.update(answers_for(kind, token))
    guest_clock.now += timedelta(hours=2)
    answers.update(answers_for("expired", expiring["token"]))

    assert len(set(answers.values())) == 1, answers
    status, _, body = json.loads(next(iter(answers.values())))
    assert status == 404
    assert body == {
        "error": {
            "code": "RequestNotFound",
            "message": "this request link does not exist or is no longer valid",
        }
    }
    assert _guest(client, "get_request_link", protected["token"]).body == {"passwordRequired": True}


def test_a_password_opens_the_link_and_guessing_is_limited(
    client: ApiClient, seed: Seeder, guest_clock: _Clock
) -> None:
    created = _create(client, new_user(), password=PASSWORD, note="hidden until unlocked")
    token = created["token"]
    assert PASSWORD not in json.dumps(seed.table_items())

    assert _guest(client, "get_request_link", token).body == {"passwordRequired": True}
    opened = _guest(client, "unlock_request_link", token, {"password": PASSWORD})
    assert (opened.status, opened.body["note"]) == (200, "hidden until unlocked")
    without = _upload(client, token)
    assert (without.status, without.error_code) == (404, "RequestNotFound")
    assert _upload(client, token, password=PASSWORD).status == 201

    wrong = [
        _guest(client, "unlock_request_link", token, {"password": "guess"}, address="198.51.100.7").status
        for _ in range(ATTEMPTS_PER_CLIENT)
    ]
    limited = _guest(client, "unlock_request_link", token, {"password": PASSWORD}, address="198.51.100.7")
    limited_upload = _guest(
        client,
        "create_guest_upload",
        token,
        {"name": "a.pdf", "size": 10, "contentType": "application/pdf", "password": PASSWORD},
        address="198.51.100.7",
    )
    other_client = _guest(client, "unlock_request_link", token, {"password": PASSWORD}, address="192.0.2.1")

    assert wrong == [404] * ATTEMPTS_PER_CLIENT
    assert (limited.status, limited.error_code) == (429, "TooManyAttempts")
    assert limited.headers["Retry-After"] == str(14 * 60)  # the clock stands a minute into its window
    assert (limited_upload.status, limited_upload.headers["Retry-After"]) == (429, str(14 * 60))
    assert other_client.status == 200


def test_a_guest_follows_their_uploads_after_the_link_is_used_up_or_expired_but_not_revoked(
    client: ApiClient, guest_clock: _Clock
) -> None:
    owner = new_user()
    created = _create(client, owner, maxFiles=1)
    issued = _upload(client, created["token"]).body
    refs = {"uploads": [{"fileId": issued["fileId"], "receipt": issued["receipt"]}]}

    assert _guest(client, "get_guest_uploads", created["token"], refs).status == 200  # used up
    guest_clock.now += timedelta(days=8)
    assert _guest(client, "get_guest_uploads", created["token"], refs).status == 200  # and expired
    client.call("revoke_request_link", sub=owner, path={"token": created["requestId"]})
    assert _guest(client, "get_guest_uploads", created["token"], refs).status == 404
    assert client.call("get_file", sub=owner, path={"fileId": issued["fileId"]}).status == 200


def test_an_expired_link_reopens_when_its_owner_extends_it(client: ApiClient, guest_clock: _Clock) -> None:
    owner = new_user()
    created = _create(client, owner, expiresInSeconds=600)
    guest_clock.now += timedelta(hours=1)
    assert _guest(client, "get_request_link", created["token"]).status == 404

    client.call(
        "update_request_link", sub=owner, path={"token": created["token"]}, body={"expiresInSeconds": 86400}
    )

    assert _guest(client, "get_request_link", created["token"]).status == 200


@pytest.mark.usefixtures("multipart_env")
def test_a_guest_resumes_an_interrupted_upload_by_its_receipt_and_nobody_else_can(
    client: ApiClient, guest_clock: _Clock
) -> None:
    owner = new_user()
    created = _create(client, owner, expiresInSeconds=3600, maxBytes=1024**3)
    token = created["token"]
    size = 20 * MIB + 123
    plan = _upload(client, token, size=size, name="film.mp4", content_type="video/mp4").body
    file_id, receipt = plan["fileId"], plan["receipt"]
    first = bytes(range(256)) * (plan["partSize"] // 256)
    checksum = base64.b64encode(hashlib.sha256(first).digest()).decode()
    signed = _guest(
        client,
        "sign_guest_upload_parts",
        token,
        {"receipt": receipt, "parts": [{"partNumber": 1, "checksumSha256": checksum}]},
        fileId=file_id,
    ).body["parts"][0]
    assert requests.put(signed["url"], data=first, headers=signed["headers"], timeout=10).status_code == 200
    guest_clock.now += timedelta(hours=2)  # the link has expired since; the guest's upload is still theirs

    progress = _guest(client, "get_guest_upload_progress", token, {"receipt": receipt}, fileId=file_id)

    assert progress.status == 200, progress.body
    assert (progress.body["partCount"], progress.body["missingParts"]) == (3, [2, 3])
    held = [(part["partNumber"], part["checksumSha256"]) for part in progress.body["parts"]]
    assert held == [(1, checksum)]
    assert progress.body == client.call("get_upload", sub=owner, path={"fileId": file_id}).body
    owners_own = client.call(
        "create_upload", sub=owner, body={"name": "b.mp4", "size": size, "contentType": "video/mp4"}
    ).body
    refusals = [
        _guest(client, "get_guest_upload_progress", token, {"receipt": new_share_token()}, fileId=file_id),
        _guest(client, "get_guest_upload_progress", new_share_token(), {"receipt": receipt}, fileId=file_id),
        _guest(client, "get_guest_upload_progress", token, {"receipt": receipt}, fileId=owners_own["fileId"]),
    ]
    client.call("revoke_request_link", sub=owner, path={"token": created["requestId"]})
    refusals.append(_guest(client, "get_guest_upload_progress", token, {"receipt": receipt}, fileId=file_id))
    assert {json.dumps([r.status, r.headers, r.body], sort_keys=True) for r in refusals} == {
        json.dumps([404, refusals[0].headers, refusals[0].body], sort_keys=True)
    }
    assert refusals[0].error_code == "RequestNotFound"


def test_an_owner_changes_limits_password_and_note_and_the_link_counts_what_it_received(
    client: ApiClient, guest_clock: _Clock
) -> None:
    owner = new_user()
    created = _create(client, owner, maxFiles=2, maxBytes=5000, note="Old note")
    token, request_id = created["token"], created["requestId"]
    assert _upload(client, token, size=1200).status == 201

    def change(**body: object) -> ApiResponse:
        return client.call("update_request_link", sub=owner, path={"token": request_id}, body=body)

    fewer = change(maxFiles=1)
    assert fewer.status == 200, fewer.body
    assert (fewer.body["filesReceived"], fewer.body["state"]) == (1, "USED_UP")
    assert _guest(client, "get_request_link", token).status == 404  # full: like an unknown link
    more = change(maxFiles=4, maxBytes=10_000, password=PASSWORD, note="Send the scans, please.")
    assert more.status == 200, more.body
    assert {k: more.body[k] for k in ("maxFiles", "maxBytes", "filesReceived", "bytesReceived", "state")} == {
        "maxFiles": 4,
        "maxBytes": 10_000,
        "filesReceived": 1,
        "bytesReceived": 1200,
        "state": "ACTIVE",
    }
    assert (more.body["passwordProtected"], more.body["note"]) == (True, "Send the scans, please.")
    assert _guest(client, "get_request_link", token).body == {"passwordRequired": True}
    opened = _guest(client, "unlock_request_link", token, {"password": PASSWORD})
    assert opened.status == 200
    assert (opened.body["filesLeft"], opened.body["bytesLeft"], opened.body["note"]) == (
        3,
        8800,
        "Send the scans, please.",
    )
    assert _upload(client, token, size=9000, password=PASSWORD).error_code == "RequestLimitExceeded"

    plain = change(password=None, note=None)
    assert plain.status == 200
    assert (plain.body["passwordProtected"], "note" in plain.body) == (False, False)
    assert _guest(client, "get_request_link", token).body["filesLeft"] == 3
    stranger = client.call(
        "update_request_link", sub=new_user(), path={"token": request_id}, body={"maxFiles": 9}
    )
    assert (stranger.status, stranger.error_code) == (404, "RequestNotFound")
    [listed] = client.call("list_request_links", sub=owner).body["items"]
    assert (listed["maxFiles"], listed["filesReceived"]) == (4, 1)
