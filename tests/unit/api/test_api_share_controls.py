"""Shares under control: passwords and their rate limit, changes after creation, sliding expiry, the
download log, download notices and links that hold several files."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest

import api.passwords
import api.public_handler
import common.shares
from api.files import CleanLinks
from api.models import CreateShareRequest, DownloadShareRequest
from api.passwords import ScryptCost, hash_password, verify_password
from api.sharing import (
    ATTEMPTS_PER_CLIENT,
    ATTEMPTS_PER_LINK,
    LOG_DAYS,
    OwnerShares,
    PublicShares,
    TooManyAttempts,
    new_share_token,
    share_id_for,
)
from api.visitors import Visitor
from common.errors import NotFound
from common.model import Status, clean_key
from common.records import FileRecords
from common.shares import ShareRecords
from common.storage import ObjectStore
from tests.stack import StackFixture
from tests.unit.api.support import ApiClient, ApiResponse, Seeder, new_user

PASSWORD = "correct horse"
FIREFOX_ON_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
SAFARI_ON_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1"
)
CHEAP = ScryptCost(n=2**4, r=1, p=1)


@pytest.fixture(autouse=True)
def cheap_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hashes made in these tests cost microseconds; verification reads the cost from each hash."""
    monkeypatch.setattr(api.passwords, "DEFAULT_COST", CHEAP)


@pytest.fixture
def public_clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    """The share function's clock, held a minute into a rate-limit window so no window ends mid-test."""
    now = datetime.now(UTC)
    clock = _Clock(
        now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0) + timedelta(minutes=1)
    )
    services = api.public_handler.services
    monkeypatch.setattr(api.public_handler, "services", lambda: services(clock))
    return clock


def _create(client: ApiClient, owner: str, file_id: str, **body: object) -> dict[str, Any]:
    response = client.call("create_share", sub=owner, path={"fileId": file_id}, body=body)
    assert response.status == 201, response.body
    return dict(response.body)


def _public(
    client: ApiClient, name: str, token: str, body: Any = None, address: str = "203.0.113.10", **headers: str
) -> ApiResponse:
    event = client.event(name, path={"token": token}, **({} if body is None else {"body": body}))
    event["requestContext"]["http"]["sourceIp"] = address
    event["headers"].update(headers)
    response = client.send(name, event)
    assert response.status < 500, response.body
    return response


def _share_items(seed: Seeder, share_id: str) -> list[dict[str, Any]]:
    return [item for item in seed.table_items() if item["pk"]["S"] == f"SHARE#{share_id}"]


# ---------------------------------------------------------------- passwords


def test_a_password_is_stored_as_a_slow_hash_and_asked_for_before_anything_is_shown(
    client: ApiClient, seed: Seeder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api.passwords, "DEFAULT_COST", api.passwords.ScryptCost(n=2**15, r=8, p=1))
    owner = new_user()
    file_id = seed.file(owner, Status.READY, name="contract.pdf", content_type="application/pdf")

    created = _create(client, owner, file_id, password=PASSWORD)

    assert created["passwordProtected"] is True
    stored = json.dumps(seed.table_items())
    assert PASSWORD not in stored
    share = ShareRecords(seed.stack.client("dynamodb"), seed.stack.physical("FilesTable")).get(
        created["shareId"]
    )
    assert share is not None
    assert str(share["passwordHash"]).startswith("scrypt$32768$8$1$")
    assert verify_password(PASSWORD, share["passwordHash"])
    locked = _public(client, "get_share", created["token"])
    assert (locked.status, locked.body) == (200, {"passwordRequired": True})
    opened = _public(client, "unlock_share", created["token"], {"password": PASSWORD})
    assert opened.status == 200
    assert opened.body["name"] == "contract.pdf"
    assert [f["fileId"] for f in opened.body["files"]] == [file_id]
    download = _public(client, "download_share", created["token"], {"password": PASSWORD})
    assert download.status == 200
    assert urlsplit(download.body["url"]).path.endswith(clean_key(owner, file_id))
    listed = client.call("list_shares", sub=owner, path={"fileId": file_id}).body["items"]
    assert [item["passwordProtected"] for item in listed] == [True]
    assert "passwordHash" not in json.dumps(listed)


def test_unknown_revoked_expired_exhausted_and_wrong_password_answers_are_identical(
    api_stack: StackFixture, client: ApiClient, seed: Seeder
) -> None:
    owner = new_user()
    file_id = seed.file(owner, Status.READY)
    protected = _create(client, owner, file_id, password=PASSWORD)
    revoked = _create(client, owner, file_id, password=PASSWORD)
    client.call("revoke_share", sub=owner, path={"token": revoked["shareId"]})
    exhausted = _create(client, owner, file_id, password=PASSWORD, maxDownloads=1)
    assert _public(client, "download_share", exhausted["token"], {"password": PASSWORD}).status == 200
    past = _Clock(datetime.now(UTC) - timedelta(days=2))
    owner_shares, _, _ = _services(api_stack, past)
    expired = owner_shares.create(
        owner, file_id, CreateShareRequest(expiresInSeconds=3600, password=PASSWORD)
    )
    tokens = {
        "unknown": new_share_token(),
        "revoked": revoked["token"],
        "expired": expired.token,
        "exhausted": exhausted["token"],
        "wrong password": protected["token"],
    }

    answers = {}
    for kind, token in tokens.items():
        password = "not the password" if kind == "wrong password" else PASSWORD
        for route in ("unlock_share", "download_share"):
            response = _public(client, route, token, {"password": password})
            answers[(kind, route)] = (response.status, response.headers, response.body)
        for route in ("download_share",):
            response = _public(client, route, token, {})
            answers[(kind, f"{route} without a password")] = (
                response.status,
                response.headers,
                response.body,
            )

    assert len(set(json.dumps(answer, sort_keys=True) for answer in answers.values())) == 1, answers
    status, _, body = next(iter(answers.values()))
    assert status == 404
    assert body == {
        "error": {"code": "ShareNotFound", "message": "this share link does not exist or is no longer valid"}
    }
    lookups = {kind: _public(client, "get_share", token) for kind, token in tokens.items()}
    assert {kind: response.status for kind, response in lookups.items()} == {
        "unknown": 404,
        "revoked": 404,
        "expired": 404,
        "exhausted": 404,
        "wrong password": 200,  # the link exists; only its password opens it
    }


def test_guessing_is_limited_per_client_and_per_link_and_right_passwords_cost_nothing(
    client: ApiClient, seed: Seeder, public_clock: _Clock
) -> None:
    owner = new_user()
    file_id = seed.file(owner, Status.READY)
    token = _create(client, owner, file_id, password=PASSWORD)["token"]

    for _ in range(ATTEMPTS_PER_CLIENT + 5):  # right passwords are given back
        assert _public(client, "unlock_share", token, {"password": PASSWORD}).status == 200
    wrong = [
        _public(client, "unlock_share", token, {"password": "guess"}, address="198.51.100.7").status
        for _ in range(ATTEMPTS_PER_CLIENT)
    ]
    limited = _public(client, "unlock_share", token, {"password": PASSWORD}, address="198.51.100.7")
    other_client = _public(client, "download_share", token, {"password": PASSWORD}, address="192.0.2.1")

    assert wrong == [404] * ATTEMPTS_PER_CLIENT
    assert (limited.status, limited.error_code) == (429, "TooManyAttempts")
    assert limited.headers["Retry-After"] == str(14 * 60)  # the clock stands a minute into its window
    assert "try again in" in limited.body["error"]["message"]
    assert other_client.status == 200

    spent = ATTEMPTS_PER_CLIENT
    address = 0
    while spent < ATTEMPTS_PER_LINK:  # many clients, each under its own limit, use up the link's
        address += 1
        answer = _public(client, "unlock_share", token, {"password": "guess"}, address=f"192.0.2.{address}")
        assert answer.status == 404
        spent += 1
    everyone = _public(client, "unlock_share", token, {"password": PASSWORD}, address="203.0.113.200")
    assert (everyone.status, everyone.error_code) == (429, "TooManyAttempts")


def test_a_new_window_lets_a_client_try_again(api_stack: StackFixture, seed: Seeder) -> None:
    owner = new_user()
    file_id = seed.file(owner, Status.READY)
    clock = _Clock(datetime(2031, 3, 1, 9, 0, tzinfo=UTC))
    owner_shares, public, _ = _services(api_stack, clock)
    token = owner_shares.create(owner, file_id, CreateShareRequest(password=PASSWORD)).token
    guesser = Visitor(address="198.51.100.9")

    for _ in range(ATTEMPTS_PER_CLIENT):
        with pytest.raises(NotFound):
            public.unlock(token, "guess", guesser)
    with pytest.raises(TooManyAttempts) as limited:
        public.unlock(token, PASSWORD, guesser)
    assert limited.value.retry_after == 15 * 60

    clock.now += timedelta(minutes=15)
    assert public.unlock(token, PASSWORD, guesser).name == "holiday.jpg"


def test_a_visitor_without_an_address_is_limited_per_link_only(api_stack: StackFixture, seed: Seeder) -> None:
    owner = new_user()
    file_id = seed.file(owner, Status.READY)
    clock = _Clock(datetime(2031, 3, 1, 9, 0, tzinfo=UTC))
    owner_shares, public, _ = _services(api_stack, clock)
    token = owner_shares.create(owner, file_id, CreateShareRequest(password=PASSWORD)).token

    for _ in range(ATTEMPTS_PER_LINK):
        with pytest.raises(NotFound):
            public.download(token, DownloadShareRequest(password="guess"), Visitor())
    with pytest.raises(TooManyAttempts):
        public.download(token, DownloadShareRequest(password=PASSWORD), Visitor())


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"password": "short"}, "InvalidPassword"),
        ({"password": " " * 8}, "InvalidPassword"),
        ({"password": "x" * 129}, "InvalidPassword"),
        ({"password": 12345678}, "InvalidPassword"),
        ({"slidingExpirySeconds": 59}, "InvalidSlidingExpiry"),
        ({"slidingExpirySeconds": 31 * 86400}, "InvalidSlidingExpiry"),
        ({"notifyOn": "SOMETIMES"}, "InvalidNotifyOn"),
        ({"notifyOn": "first"}, "InvalidNotifyOn"),
    ],
)
def test_bad_share_settings_are_400(client: ApiClient, seed: Seeder, body: object, code: str) -> None:
    owner = new_user()
    file_id = seed.file(owner, Status.READY)

    response = client.call("create_share", sub=owner, path={"fileId": file_id}, body=body)

    assert (response.status, response.error_code) == (400, code)
    assert "12345678" not in response.body["error"]["message"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "MissingField"),
        ({"password": ""}, "InvalidPassword"),
        ({"password": "x" * 129}, "InvalidPassword"),
        ({"password": None}, "InvalidPassword"),
        ([], "InvalidRequest"),
    ],
)
def test_bad_unlock_bodies_are_400_whatever_the_token(
    client: ApiClient, seed: Seeder, body: object, code: str
) -> None:
    owner = new_user()
    token = _create(client, owner, seed.file(owner, Status.READY), password=PASSWORD)["token"]

    real = _public(client, "unlock_share", token, body)
    unknown = _public(client, "unlock_share", new_share_token(), body)

    assert (real.status, real.error_code) == (400, code)
    assert real.body == unknown.body


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"fileId": "not-a-file-id"}, "InvalidFileId"),
        ({"password": ""}, "InvalidPassword"),
        ({"password": 5}, "InvalidPassword"),
    ],
)
def test_bad_download_bodies_are_400(client: ApiClient, body: object, code: str) -> None:
    response = _public(client, "download_share", new_share_token(), body)

    assert (response.status, response.error_code) == (400, code)


def test_password_hashes_verify_only_their_password_and_refuse_anything_malformed() -> None:
    stored = hash_password("pässwörd ✓", CHEAP)

    assert verify_password("pässwörd ✓", stored)
    assert not verify_password("passwort ✓", stored)
    assert hash_password("pässwörd ✓", CHEAP) != stored  # salted
    scheme, n, r, p, salt, key = stored.split("$")
    for malformed in (
        "",
        "plain text",
        stored.replace("scrypt", "md5"),
        f"{scheme}${2**30}${r}${p}${salt}${key}",  # would take minutes: refused, not run
        f"{scheme}$1000${r}${p}${salt}${key}",  # not a power of two
        f"{scheme}${n}${r}${p}${salt}$!!!",
        f"{scheme}${n}${r}${p}${salt}${key[:-4]}",
    ):
        assert not verify_password("pässwörd ✓", malformed), malformed


# ---------------------------------------------------------------- changes after creation


def test_owner_changes_expiry_limit_password_sliding_and_notices_and_null_removes_them(
    client: ApiClient, seed: Seeder
) -> None:
    owner = new_user()
    file_id = seed.file(owner, Status.READY)
    created = _create(client, owner, file_id, maxDownloads=1)
    token = created["token"]
    assert _public(client, "download_share", token).status == 200
    assert _public(client, "download_share", token).status == 404  # used up

    changed = client.call(
        "update_share",
        sub=owner,
        path={"token": created["shareId"]},
        body={
            "expiresInSeconds": 3600,
            "maxDownloads": 5,
            "password": PASSWORD,
            "slidingExpirySeconds": 600,
            "notifyOn": "EVERY",
        },
    )

    assert changed.status == 200, changed.body
    view = changed.body
    expires = datetime.fromisoformat(view["expiresAt"].replace("Z", "+00:00"))
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)
    latest = datetime.fromisoformat(view["latestExpiresAt"].replace("Z", "+00:00"))
    assert timedelta(days=29, hours=23) < latest - datetime.now(UTC) <= timedelta(days=30)
    assert (view["maxDownloads"], view["downloads"], view["state"]) == (5, 1, "ACTIVE")
    assert (view["passwordProtected"], view["slidingExpirySeconds"], view["notifyOn"]) == (True, 600, "EVERY")
    assert _public(client, "get_share", token).body == {"passwordRequired": True}
    assert _public(client, "download_share", token, {"password": PASSWORD}).status == 200

    cleared = client.call(
        "update_share",
        sub=owner,
        path={"token": token},
        body={"maxDownloads": None, "password": None, "slidingExpirySeconds": None, "notifyOn": None},
    ).body

    assert cleared["passwordProtected"] is False
    assert not {"maxDownloads", "slidingExpirySeconds", "latestExpiresAt", "notifyOn"} & cleared.keys()
    assert cleared["expiresAt"] == view["expiresAt"]
    assert _public(client, "get_share", token).body["name"] == "holiday.jpg"
    assert "downloadsRemaining" not in _public(client, "get_share", token).body


def test_lowering_the_limit_below_the_downloads_so_far_uses_the_link_up(
    client: ApiClient, seed: Seeder
) -> None:
    owner = new_user()
    file_id = seed.file(owner, Status.READY)
    created = _create(client, owner, file_id)
    for _ in range(2):
        _public(client, "download_share", created["token"])

    view = client.call(
        "update_share", sub=owner, path={"token": created["shareId"]}, body={"maxDownloads": 1}
    ).body

    assert (view["state"], view["downloads"]) == ("EXHAUSTED", 2)
    assert _public(client, "download_share", created["token"]).status == 404


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "NothingToChange"),
        ({"unknown": 1}, "NothingToChange"),
        ({"expiresInSeconds": None}, "InvalidExpiry"),
        ({"expiresInSeconds": 59}, "InvalidExpiry"),
        ({"expiresInSeconds": "3600"}, "InvalidExpiry"),
        ({"maxDownloads": 0}, "InvalidMaxDownloads"),
        ({"maxDownloads": True}, "InvalidMaxDownloads"),
        ({"password": "short"}, "InvalidPassword"),
        ({"slidingExpirySeconds": 0}, "InvalidSlidingExpiry"),
        ({"notifyOn": "NEVER"}, "InvalidNotifyOn"),
        ([], "InvalidRequest"),
        ("null", "MissingField"),
    ],
)
def test_bad_changes_are_400_and_change_nothing(
    client: ApiClient, seed: Seeder, body: object, code: str
) -> None:
    owner = new_user()
    created = _create(client, owner, seed.file(owner, Status.READY), maxDownloads=3)
    before = seed.table_items()

    if body == "null":
        response = client.call("update_share", sub=owner, path={"token": created["shareId"]}, raw_body="null")
    else:
        response = client.call("update_share", sub=owner, path={"token": created["shareId"]}, body=body)

    assert (response.status, response.error_code) == (400, code)
    assert seed.table_items() == before


def test_only_the_owner_changes_or_reads_a_share(client: ApiClient, seed: Seeder) -> None:
    owner, intruder = new_user(), new_user()
    created = _create(client, owner, seed.file(owner, Status.READY))
    before = seed.table_items()

    answers = [
        client.call("update_share", sub=intruder, path={"token": key}, body={"maxDownloads": 1})
        for key in (created["token"], created["shareId"])
    ] + [
        client.call("list_share_downloads", sub=intruder, path={"token": key})
        for key in (created["token"], created["shareId"])
    ]
    unknown = client.call(
        "update_share", sub=owner, path={"token": new_share_token()}, body={"maxDownloads": 1}
    )
    malformed = client.call("list_share_downloads", sub=owner, path={"token": "not!a!token"})

    for answer in [*answers, unknown, malformed]:
        assert (answer.status, answer.error_code) == (404, "ShareNotFound")
    assert seed.table_items() == before


def test_an_owner_may_bring_an_expired_link_back(
    api_stack: StackFixture, client: ApiClient, seed: Seeder
) -> None:
    owner = new_user()
    file_id = seed.file(owner, Status.READY)
    owner_shares, _, _ = _services(api_stack, _Clock(datetime.now(UTC) - timedelta(days=8)))
    created = owner_shares.create(owner, file_id, CreateShareRequest())
    assert _public(client, "get_share", created.token).status == 404

    view = client.call(
        "update_share", sub=owner, path={"token": created.shareId}, body={"expiresInSeconds": 600}
    )

    assert view.body["state"] == "ACTIVE"
    assert _public(client, "get_share", created.token).status == 200


def test_sliding_expiry_moves_with_each_download_up_to_its_cap(api_stack: StackFixture, seed: Seeder) -> None:
    owner = new_user()
    file_id = seed.file(owner, Status.READY)
    start = datetime(2031, 5, 1, 8, 0, tzinfo=UTC)
    clock = _Clock(start)
    owner_shares, public, shares = _services(api_stack, clock)
    created = owner_shares.create(
        owner, file_id, CreateShareRequest(expiresInSeconds=3600, slidingExpirySeconds=2 * 86400)
    )

    clock.now += timedelta(minutes=50)
    public.download(created.token)
    after_first = shares.get(created.shareId)
    clock.now = start + timedelta(days=1)
    public.lookup(created.token)  # a look never slides anything
    assert shares.get(created.shareId) == after_first
    clock.now = start + timedelta(days=1, hours=23)  # 2031-05-03 07:00, before the 08:50 expiry
    public.download(created.token)
    clock.now = start + timedelta(days=3, hours=22)  # 2031-05-05 06:00, before the 07:00 expiry
    public.download(created.token)
    clock.now = start + timedelta(days=29)
    with pytest.raises(NotFound):  # no download for two days: it lapsed
        public.download(created.token)

    assert after_first is not None
    assert after_first["expiresAt"] == "2031-05-03T08:50:00.000Z"
    final = shares.get(created.shareId)
    assert final is not None
    assert final["expiresAt"] == "2031-05-07T06:00:00.000Z"
    assert final["downloads"] == 3

    capped = owner_shares.create(
        owner, file_id, CreateShareRequest(expiresInSeconds=86400, slidingExpirySeconds=7 * 86400)
    )
    for day in range(0, 40, 5):
        clock.now = start + timedelta(days=29 + day)
        try:
            public.download(capped.token)
        except NotFound:
            break
    cap = datetime(2031, 5, 30, 8, 0, tzinfo=UTC) + timedelta(days=30)
    kept = shares.get(capped.shareId)
    assert kept is not None
    assert kept["expiresAtEpoch"] == int(cap.timestamp())


# ---------------------------------------------------------------- the download log


def test_the_owner_sees_when_and_with_what_each_download_happened_and_no_address(
    client: ApiClient, seed: Seeder
) -> None:
    owner = new_user()
    file_id = seed.file(owner, Status.READY, name="slides.pdf", content_type="application/pdf")
    created = _create(client, owner, file_id)
    _public(client, "download_share", created["token"], address="203.0.113.77")
    _public(
        client,
        "download_share",
        created["token"],
        address="2001:db8::1",
        **{"user-agent": SAFARI_ON_IPHONE, "cloudfront-viewer-country": "de"},
    )
    _public(client, "download_share", created["token"], **{"user-agent": ""})

    log = client.call("list_share_downloads", sub=owner, path={"token": created["shareId"]})

    assert log.status == 200
    assert log.body["downloads"] == 3
    assert (log.body["kept"], log.body["keptDays"]) == (100, LOG_DAYS)
    entries = log.body["items"]
    assert [entry["download"] for entry in entries] == [3, 2, 1]
    assert [(e["browser"], e["platform"], e.get("country")) for e in entries] == [
        ("Unknown", "Unknown", None),
        ("Safari", "iOS", "DE"),
        ("Chrome", "Linux", None),
    ]
    assert {entry["fileId"] for entry in entries} == {file_id}
    assert {entry["fileName"] for entry in entries} == {"slides.pdf"}
    stored = json.dumps(seed.table_items())
    for identifying in ("203.0.113.77", "2001:db8::1", "iPhone OS 18_1", "AppleWebKit"):
        assert identifying not in stored
    assert client.call("list_share_downloads", sub=owner, path={"token": created["token"]}).body == log.body


def test_the_log_keeps_the_newest_entries_within_their_days(
    api_stack: StackFixture, seed: Seeder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(common.shares, "SHARE_LOG_SLOTS", 3)
    owner = new_user()
    file_id = seed.file(owner, Status.READY)
    start = datetime(2031, 1, 1, tzinfo=UTC)
    clock = _Clock(start)
    owner_shares, public, _ = _services(api_stack, clock)
    created = owner_shares.create(owner, file_id, CreateShareRequest(expiresInSeconds=30 * 86400))

    for minute in range(5):
        clock.now = start + timedelta(minutes=minute)
        public.download(created.token)
    log = owner_shares.downloads(owner, created.shareId)

    assert [entry.download for entry in log.items] == [5, 4, 3]
    assert log.downloads == 5
    assert (
        len([item for item in _share_items(seed, created.shareId) if item["sk"]["S"].startswith("LOG#")]) == 3
    )
    clock.now = start + timedelta(days=LOG_DAYS, minutes=3, seconds=30)
    assert [entry.download for entry in owner_shares.downloads(owner, created.shareId).items] == [5]


def test_revoking_removes_the_log_and_the_password_windows(client: ApiClient, seed: Seeder) -> None:
    owner = new_user()
    created = _create(client, owner, seed.file(owner, Status.READY), password=PASSWORD)
    _public(client, "download_share", created["token"], {"password": PASSWORD})
    _public(client, "unlock_share", created["token"], {"password": "wrong guess"})
    assert {item["sk"]["S"].split("#")[0] for item in _share_items(seed, created["shareId"])} == {
        "SHARE",
        "LOG",
        "GUESSES",
    }

    client.call("revoke_share", sub=owner, path={"token": created["shareId"]})

    assert _share_items(seed, created["shareId"]) == []


def test_a_failing_log_never_fails_the_download(
    client: ApiClient, seed: Seeder, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = new_user()
    created = _create(client, owner, seed.file(owner, Status.READY))

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("log table unavailable (injected)")

    monkeypatch.setattr(ShareRecords, "log_download", broken)

    assert _public(client, "download_share", created["token"]).status == 200


# ---------------------------------------------------------------- download notices


def test_notices_go_out_on_the_first_or_on_every_download(api_stack: StackFixture, seed: Seeder) -> None:
    owner = new_user()
    file_id = seed.file(owner, Status.READY)
    announced: list[dict[str, Any]] = []
    clock = _Clock(datetime(2031, 2, 1, tzinfo=UTC))
    owner_shares, public, _ = _services(api_stack, clock, announced.append)
    first = owner_shares.create(owner, file_id, CreateShareRequest(notifyOn="FIRST"), "owner@example.com")
    every = owner_shares.create(owner, file_id, CreateShareRequest(notifyOn="EVERY"), "owner@example.com")
    quiet = owner_shares.create(owner, file_id, CreateShareRequest(), "owner@example.com")

    for token in (first.token, every.token, quiet.token) * 2:
        public.download(token, visitor=Visitor("203.0.113.5", SAFARI_ON_IPHONE, "FR"))

    assert [(notice["shareId"], notice["download"]) for notice in announced] == [
        (first.shareId, 1),
        (every.shareId, 1),
        (every.shareId, 2),
    ]
    assert announced[0] == {
        "shareId": first.shareId,
        "ownerId": owner,
        "notifyOn": "FIRST",
        "download": 1,
        "at": "2031-02-01T00:00:00.000Z",
        "fileId": file_id,
        "fileName": "holiday.jpg",
        "browser": "Safari",
        "platform": "iOS",
        "country": "FR",
    }
    share = ShareRecords(seed.stack.client("dynamodb"), seed.stack.physical("FilesTable")).get(first.shareId)
    assert share is not None
    assert share["ownerEmail"] == "owner@example.com"
    assert "ownerEmail" not in (
        ShareRecords(seed.stack.client("dynamodb"), seed.stack.physical("FilesTable")).get(quiet.shareId)
        or {}
    )


def test_a_notice_the_bus_refuses_is_counted_and_the_download_served(
    client: ApiClient, seed: Seeder, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from notify.handler import BusPublisher

    owner = new_user()
    created = _create(client, owner, seed.file(owner, Status.READY), notifyOn="EVERY")
    published: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(BusPublisher, "publish", lambda self, kind, detail: published.append((kind, detail)))
    assert _public(client, "download_share", created["token"]).status == 200
    assert [kind for kind, _ in published] == ["ShareDownloaded"]

    def refused(self: Any, kind: str, detail: dict[str, Any]) -> None:
        raise RuntimeError("EventBridge refused ShareDownloaded (injected)")

    monkeypatch.setattr(BusPublisher, "publish", refused)
    capsys.readouterr()

    assert _public(client, "download_share", created["token"]).status == 200
    metrics = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if "NotificationsFailed" in line
    ]
    assert [(m["step"], m["channel"], m["NotificationsFailed"]) for m in metrics] == [
        ("notify", "event", [1.0])
    ]


# ---------------------------------------------------------------- several files in one link


def test_a_link_to_several_files_lists_each_with_its_preview_and_downloads_each(
    client: ApiClient, seed: Seeder
) -> None:
    owner = new_user()
    photo = seed.file(owner, Status.READY, name="beach.jpg")
    notes = seed.file(owner, Status.READY, name="notes.txt", content_type="text/plain", thumbnails=False)
    created = client.call(
        "create_files_share", sub=owner, body={"fileIds": [photo, notes], "maxDownloads": 3}
    )
    assert created.status == 201, created.body
    token = created.body["token"]
    assert created.body["fileIds"] == [photo, notes]

    page = _public(client, "get_share", token).body
    ambiguous = _public(client, "download_share", token)
    second = _public(client, "download_share", token, {"fileId": notes})
    first = _public(client, "download_share", token, {"fileId": photo})
    stranger = _public(client, "download_share", token, {"fileId": seed.file(owner, Status.READY)})

    assert [(f["fileId"], f["name"], "thumbnailUrl" in f) for f in page["files"]] == [
        (photo, "beach.jpg", True),
        (notes, "notes.txt", False),
    ]
    assert (page["name"], page["downloadsRemaining"]) == ("beach.jpg", 3)
    assert (ambiguous.status, ambiguous.error_code) == (400, "FileIdRequired")
    assert urlsplit(second.body["url"]).path.endswith(clean_key(owner, notes))
    assert urlsplit(first.body["url"]).path.endswith(clean_key(owner, photo))
    assert (stranger.status, stranger.error_code) == (404, "SharedFileNotFound")
    assert _public(client, "get_share", token).body["downloadsRemaining"] == 1
    for file_id in (photo, notes):
        listed = client.call("list_shares", sub=owner, path={"fileId": file_id}).body["items"]
        assert [(item["shareId"], item["fileIds"]) for item in listed] == [
            (created.body["shareId"], [photo, notes])
        ]
    log = client.call("list_share_downloads", sub=owner, path={"token": created.body["shareId"]}).body
    assert [entry["fileName"] for entry in log["items"]] == ["beach.jpg", "notes.txt"]


def test_files_that_are_not_ready_any_more_leave_the_page_and_the_last_one_takes_the_link(
    client: ApiClient, seed: Seeder
) -> None:
    owner = new_user()
    kept = seed.file(owner, Status.READY, name="kept.jpg")
    lost = seed.file(owner, Status.READY, name="lost.jpg")
    token = client.call("create_files_share", sub=owner, body={"fileIds": [lost, kept]}).body["token"]
    record = seed.record(owner, lost)
    assert record is not None
    seed.records.delete(owner, lost)
    seed.records.create({**record, "status": Status.QUARANTINED.value})

    page = _public(client, "get_share", token).body
    quarantined = _public(client, "download_share", token, {"fileId": lost})
    only = _public(client, "download_share", token)

    assert [f["name"] for f in page["files"]] == ["kept.jpg"]
    assert page["name"] == "kept.jpg"
    assert (quarantined.status, quarantined.error_code) == (404, "SharedFileNotFound")
    assert only.status == 200
    seed.records.delete(owner, kept)
    assert _public(client, "get_share", token).error_code == "ShareNotFound"


def test_deleting_a_file_takes_it_out_of_links_that_hold_others(client: ApiClient, seed: Seeder) -> None:
    owner = new_user()
    first, second, third = (seed.file(owner, Status.READY, name=f"{n}.jpg") for n in ("one", "two", "three"))
    shared = client.call("create_files_share", sub=owner, body={"fileIds": [first, second, third]}).body
    alone = _create(client, owner, first)

    assert client.call("delete_file", sub=owner, path={"fileId": first}).status == 204

    page = _public(client, "get_share", shared["token"]).body
    assert [f["name"] for f in page["files"]] == ["two.jpg", "three.jpg"]
    assert _public(client, "get_share", alone["token"]).status == 404
    assert _share_items(seed, alone["shareId"]) == []
    views = client.call("list_shares", sub=owner, path={"fileId": third}).body["items"]
    assert [view["fileIds"] for view in views] == [[second, third]]
    client.call("delete_file", sub=owner, path={"fileId": second})
    client.call("delete_file", sub=owner, path={"fileId": third})
    assert _public(client, "get_share", shared["token"]).status == 404
    assert _share_items(seed, shared["shareId"]) == []


@pytest.mark.parametrize(
    ("file_ids", "code"),
    [
        ([], "InvalidFileIds"),
        (["not-an-id"], "InvalidFileIds"),
        ("01JD8M3Q6W9Z2X4C5V7B8N0K1P", "InvalidFileIds"),
        (["01JD8M3Q6W9Z2X4C5V7B8N0K1P"] * 2, "InvalidFileIds"),
        ([f"01JD8M3Q6W9Z2X4C5V7B8N0K{i:02d}" for i in range(21)], "InvalidFileIds"),
        (None, "InvalidFileIds"),
    ],
)
def test_bad_file_lists_are_400(client: ApiClient, file_ids: object, code: str) -> None:
    body = {} if file_ids is None else {"fileIds": file_ids}
    response = client.call("create_files_share", sub=new_user(), body=body)

    assert response.status == 400
    assert response.error_code in {code, "MissingField"}


def test_a_link_to_several_files_needs_each_to_be_the_callers_and_ready(
    client: ApiClient, seed: Seeder
) -> None:
    owner, other = new_user(), new_user()
    mine = seed.file(owner, Status.READY)
    busy = seed.file(owner, Status.PROCESSING)
    theirs = seed.file(other, Status.READY)
    before = seed.table_items()

    foreign = client.call("create_files_share", sub=owner, body={"fileIds": [mine, theirs]})
    not_ready = client.call("create_files_share", sub=owner, body={"fileIds": [mine, busy]})

    assert (foreign.status, foreign.error_code) == (404, "FileNotFound")
    assert (not_ready.status, not_ready.error_code) == (409, "FileNotReady")
    assert seed.table_items() == before


def test_links_made_before_shares_held_several_files_still_work(client: ApiClient, seed: Seeder) -> None:
    owner = new_user()
    file_id = seed.file(owner, Status.READY)
    token = new_share_token()
    share_id = share_id_for(token)
    expires = datetime.now(UTC) + timedelta(days=1)
    seed.stack.client("dynamodb").put_item(
        TableName=seed.stack.physical("FilesTable"),
        Item={
            "pk": {"S": f"SHARE#{share_id}"},
            "sk": {"S": "SHARE"},
            "gsi1pk": {"S": f"FILE#{file_id}"},
            "gsi1sk": {"S": f"2024-11-22T11:30:00.000Z#{share_id}"},
            "shareId": {"S": share_id},
            "fileId": {"S": file_id},
            "ownerId": {"S": owner},
            "createdAt": {"S": "2024-11-22T11:30:00.000Z"},
            "expiresAt": {"S": expires.isoformat()},
            "expiresAtEpoch": {"N": str(int(expires.timestamp()))},
            "maxDownloads": {"N": "2"},
            "downloads": {"N": "0"},
        },
    )

    assert [f["fileId"] for f in _public(client, "get_share", token).body["files"]] == [file_id]
    assert _public(client, "download_share", token).status == 200
    views = client.call("list_shares", sub=owner, path={"fileId": file_id}).body["items"]
    assert [(v["fileIds"], v["passwordProtected"], v["downloads"]) for v in views] == [([file_id], False, 1)]
    changed = client.call(
        "update_share", sub=owner, path={"token": token}, body={"slidingExpirySeconds": 3600}
    )
    assert changed.status == 200
    log = client.call("list_share_downloads", sub=owner, path={"token": token}).body
    assert [entry["download"] for entry in log["items"]] == [1]


# ---------------------------------------------------------------- helpers


class _Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _services(
    stack: StackFixture, clock: _Clock, announce: Any = None
) -> tuple[OwnerShares, PublicShares, ShareRecords]:
    table = stack.physical("FilesTable")
    records = FileRecords(stack.client("dynamodb"), table)
    shares = ShareRecords(stack.client("dynamodb"), table)
    links = CleanLinks(ObjectStore(stack.client("s3")), stack.physical("FilesBucket"), clock)
    return (
        OwnerShares(records, shares, "https://files.example.com/", clock),
        PublicShares(records, shares, links, clock, announce),
        shares,
    )
