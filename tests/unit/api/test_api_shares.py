"""Share links: creation, metadata lookups that never count, counted downloads, limits, revocation, expiry."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from api.files import CleanLinks
from api.models import CreateShareRequest, PublicShare
from api.sharing import OwnerShares, PublicShares, new_share_token, share_id_for
from common.errors import NotFound
from common.model import Status, clean_key
from common.shares import ShareRecords
from tests.stack import StackFixture
from tests.unit.api.support import ApiClient, Seeder, new_user

URL_SAFE = re.compile(r"[A-Za-z0-9_-]+")


def _share_item(seed: Seeder, token: str) -> dict[str, object] | None:
    return ShareRecords(seed.stack.client("dynamodb"), seed.stack.physical("FilesTable")).get(
        share_id_for(token)
    )


def _create(client: ApiClient, owner: str, file_id: str, **body: object) -> dict[str, object]:
    response = client.call("create_share", sub=owner, path={"fileId": file_id}, body=body)
    assert response.status == 201, response.body
    return dict(response.body)


def test_share_lifecycle_lookup_never_counts_downloads_do_until_exhausted(
    client: ApiClient, seed: Seeder
) -> None:
    owner = new_user()
    file_id = seed.file(owner, Status.READY, name="holiday.jpg", data=b"jpeg bytes")
    before = datetime.now(UTC)

    created = _create(client, owner, file_id, maxDownloads=2)

    token = str(created["token"])
    assert set(created) == {
        "shareId",
        "token",
        "url",
        "expiresAt",
        "maxDownloads",
        "fileIds",
        "passwordProtected",
    }
    assert created["fileIds"] == [file_id]
    assert created["passwordProtected"] is False
    assert len(token) >= 22
    assert URL_SAFE.fullmatch(token)
    assert created["url"] == f"https://localhost/s/{token}"
    assert created["shareId"] == hashlib.sha256(token.encode()).hexdigest()
    expires = datetime.fromisoformat(str(created["expiresAt"]).replace("Z", "+00:00"))
    assert (
        before + timedelta(days=7) - timedelta(seconds=5)
        < expires
        < datetime.now(UTC) + timedelta(days=7, seconds=1)
    )
    item = _share_item(seed, token)
    assert item is not None
    assert item["pk"] == f"SHARE#{created['shareId']}"
    assert item["gsi1pk"] == f"FILE#{file_id}"
    assert item["expiresAtEpoch"] == int(expires.timestamp())
    assert token not in json.dumps(seed.table_items()), "the token itself is never stored"

    for _ in range(3):
        lookup = client.call("get_share", path={"token": token})
        assert lookup.status == 200
    assert set(lookup.body) == {
        "name",
        "size",
        "contentType",
        "thumbnailUrl",
        "expiresAt",
        "downloadsRemaining",
        "files",
    }
    assert lookup.body["files"] == [
        {
            "fileId": file_id,
            "name": "holiday.jpg",
            "size": len(b"jpeg bytes"),
            "contentType": "image/jpeg",
            "thumbnailUrl": lookup.body["thumbnailUrl"],
        }
    ]
    assert lookup.body["name"] == "holiday.jpg"
    assert lookup.body["size"] == len(b"jpeg bytes")
    assert lookup.body["contentType"] == "image/jpeg"
    assert lookup.body["downloadsRemaining"] == 2
    assert lookup.body["expiresAt"] == created["expiresAt"]
    assert urlsplit(lookup.body["thumbnailUrl"]).path.endswith(f"{file_id}/thumb-256.webp")
    assert _share_item(seed, token)["downloads"] == 0  # type: ignore[index]

    first = client.call("download_share", path={"token": token})
    assert first.status == 200
    assert set(first.body) == {"url", "expiresAt"}
    assert urlsplit(first.body["url"]).path.endswith(clean_key(owner, file_id))
    assert seed.clean_bucket in first.body["url"]
    params = {k: v[0] for k, v in parse_qs(urlsplit(first.body["url"]).query).items()}
    assert params["response-content-disposition"].startswith('attachment; filename="holiday.jpg"')
    assert params["response-content-type"] == "image/jpeg"
    assert _share_item(seed, token)["downloads"] == 1  # type: ignore[index]
    assert client.call("get_share", path={"token": token}).body["downloadsRemaining"] == 1

    assert client.call("download_share", path={"token": token}).status == 200
    exhausted = client.call("download_share", path={"token": token})
    exhausted_lookup = client.call("get_share", path={"token": token})
    unknown = client.call("get_share", path={"token": new_share_token()})

    assert exhausted.status == exhausted_lookup.status == unknown.status == 404
    assert exhausted.body == exhausted_lookup.body == unknown.body
    assert unknown.error_code == "ShareNotFound"
    assert _share_item(seed, token)["downloads"] == 2  # type: ignore[index]


def test_unlimited_share_has_no_remaining_count(client: ApiClient, seed: Seeder) -> None:
    owner = new_user()
    file_id = seed.file(owner, Status.READY, thumbnails=False)
    token = str(_create(client, owner, file_id)["token"])

    lookup = client.call("get_share", path={"token": token}).body

    assert "downloadsRemaining" not in lookup
    assert "thumbnailUrl" not in lookup
    for _ in range(3):
        assert client.call("download_share", path={"token": token}).status == 200


def test_share_without_a_body_takes_the_defaults(client: ApiClient, seed: Seeder) -> None:
    owner = new_user()
    file_id = seed.file(owner, Status.READY)
    event = client.event("create_share", sub=owner, path={"fileId": file_id})
    del event["body"]
    del event["headers"]["content-type"]

    response = client.send("create_share", event)

    assert response.status == 201
    assert "maxDownloads" not in response.body


def test_revoke_by_token_or_share_id(client: ApiClient, seed: Seeder) -> None:
    owner = new_user()
    file_id = seed.file(owner, Status.READY)
    by_token = _create(client, owner, file_id)
    by_id = _create(client, owner, file_id)

    assert client.call("revoke_share", sub=owner, path={"token": str(by_token["token"])}).status == 204
    assert client.call("revoke_share", sub=owner, path={"token": str(by_id["shareId"])}).status == 204

    for share in (by_token, by_id):
        token = str(share["token"])
        assert client.call("get_share", path={"token": token}).error_code == "ShareNotFound"
        assert client.call("download_share", path={"token": token}).error_code == "ShareNotFound"
        again = client.call("revoke_share", sub=owner, path={"token": token})
        assert (again.status, again.error_code) == (404, "ShareNotFound")
    assert client.call("list_shares", sub=owner, path={"fileId": file_id}).body == {"items": []}


def test_another_user_can_neither_revoke_nor_list_nor_create(client: ApiClient, seed: Seeder) -> None:
    owner, intruder = new_user(), new_user()
    file_id = seed.file(owner, Status.READY)
    share = _create(client, owner, file_id, maxDownloads=5)
    items_before = seed.table_items()

    revoke = client.call("revoke_share", sub=intruder, path={"token": str(share["token"])})
    revoke_by_id = client.call("revoke_share", sub=intruder, path={"token": str(share["shareId"])})
    listing = client.call("list_shares", sub=intruder, path={"fileId": file_id})
    create = client.call("create_share", sub=intruder, path={"fileId": file_id}, body={})

    assert (revoke.status, revoke.error_code) == (404, "ShareNotFound")
    assert revoke_by_id.body == revoke.body
    assert (listing.status, listing.error_code) == (404, "FileNotFound")
    assert (create.status, create.error_code) == (404, "FileNotFound")
    assert seed.table_items() == items_before
    assert client.call("get_share", path={"token": str(share["token"])}).status == 200


@pytest.mark.parametrize(
    "status", [Status.UPLOADING, Status.PROCESSING, Status.REJECTED, Status.QUARANTINED, Status.FAILED]
)
def test_only_ready_files_can_be_shared(client: ApiClient, seed: Seeder, status: Status) -> None:
    owner = new_user()
    file_id = seed.file(owner, status)

    response = client.call("create_share", sub=owner, path={"fileId": file_id}, body={})

    assert (response.status, response.error_code) == (409, "FileNotReady")
    assert client.call("list_shares", sub=owner, path={"fileId": file_id}).body == {"items": []}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"expiresInSeconds": 30 * 86400 + 1}, "InvalidExpiry"),
        ({"expiresInSeconds": 59}, "InvalidExpiry"),
        ({"expiresInSeconds": "3600"}, "InvalidExpiry"),
        ({"maxDownloads": 0}, "InvalidMaxDownloads"),
        ({"maxDownloads": -1}, "InvalidMaxDownloads"),
        ({"maxDownloads": 2.5}, "InvalidMaxDownloads"),
        ([], "InvalidRequest"),
    ],
)
def test_bad_share_bodies_are_400(client: ApiClient, seed: Seeder, body: object, code: str) -> None:
    owner = new_user()
    file_id = seed.file(owner, Status.READY)

    response = client.call("create_share", sub=owner, path={"fileId": file_id}, body=body)

    assert (response.status, response.error_code) == (400, code)


def test_thirty_days_is_the_longest_share(client: ApiClient, seed: Seeder) -> None:
    owner = new_user()
    file_id = seed.file(owner, Status.READY)

    share = _create(client, owner, file_id, expiresInSeconds=30 * 86400)

    expires = datetime.fromisoformat(str(share["expiresAt"]).replace("Z", "+00:00"))
    assert expires - datetime.now(UTC) > timedelta(days=29, hours=23)


def test_owner_lists_shares_with_their_state_and_never_a_token(client: ApiClient, seed: Seeder) -> None:
    owner = new_user()
    file_id = seed.file(owner, Status.READY)
    other_file = seed.file(owner, Status.READY)
    active = _create(client, owner, file_id)
    used_up = _create(client, owner, file_id, maxDownloads=1)
    _create(client, owner, other_file)
    client.call("download_share", path={"token": str(used_up["token"])})

    listing = client.call("list_shares", sub=owner, path={"fileId": file_id}).body

    by_id = {item["shareId"]: item for item in listing["items"]}
    assert set(by_id) == {active["shareId"], used_up["shareId"]}
    assert by_id[active["shareId"]]["state"] == "ACTIVE"
    assert by_id[used_up["shareId"]]["state"] == "EXHAUSTED"
    assert by_id[used_up["shareId"]]["downloads"] == 1
    assert by_id[used_up["shareId"]]["maxDownloads"] == 1
    assert all(
        set(item) >= {"shareId", "fileId", "createdAt", "expiresAt", "downloads", "state"}
        for item in listing["items"]
    )
    assert str(active["token"]) not in json.dumps(listing)


def test_a_share_dies_with_its_file_becoming_unavailable(client: ApiClient, seed: Seeder) -> None:
    owner = new_user()
    file_id = seed.file(owner, Status.READY)
    token = str(_create(client, owner, file_id)["token"])
    seed.records.delete(owner, file_id)

    assert client.call("get_share", path={"token": token}).error_code == "ShareNotFound"
    assert client.call("download_share", path={"token": token}).error_code == "ShareNotFound"
    assert _share_item(seed, token)["downloads"] == 0  # type: ignore[index]


@pytest.mark.parametrize(
    "token",
    [
        "short",
        "a" * 129,
        "has space in it and is long enough",
        "..%2F..%2F..%2Fetc%2Fpasswd",
        "%00" * 10,
        "!" * 43,
    ],
)
def test_malformed_tokens_read_like_unknown_ones(client: ApiClient, token: str) -> None:
    unknown = client.call("get_share", path={"token": new_share_token()})

    lookup = client.call("get_share", path={"token": token})
    download = client.call("download_share", path={"token": token})

    assert lookup.status == download.status == 404
    assert lookup.body == download.body == unknown.body


# ---------------------------------------------------------------- time and counting, with an injected clock


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _services(stack: StackFixture, clock: Clock) -> tuple[OwnerShares, PublicShares, ShareRecords]:
    from common.records import FileRecords
    from common.storage import ObjectStore

    table = stack.physical("FilesTable")
    records = FileRecords(stack.client("dynamodb"), table)
    shares = ShareRecords(stack.client("dynamodb"), table)
    links = CleanLinks(ObjectStore(stack.client("s3")), stack.physical("FilesBucket"), clock)
    return (
        OwnerShares(records, shares, "https://files.example.com/", clock),
        PublicShares(records, shares, links, clock),
        shares,
    )


def test_share_expires_at_its_second(api_stack: StackFixture, seed: Seeder) -> None:
    owner = new_user()
    file_id = seed.file(owner, Status.READY)
    clock = Clock(datetime(2030, 1, 1, 12, 0, tzinfo=UTC))
    owner_shares, public, _ = _services(api_stack, clock)
    created = owner_shares.create(owner, file_id, CreateShareRequest(expiresInSeconds=3600))
    assert created.url == f"https://files.example.com/s/{created.token}"
    assert created.expiresAt == "2030-01-01T13:00:00.000Z"

    clock.now += timedelta(seconds=3599)
    page = public.lookup(created.token)
    assert isinstance(page, PublicShare)
    assert page.name == "holiday.jpg"
    assert public.download(created.token).url

    clock.now += timedelta(seconds=1)
    with pytest.raises(NotFound) as lookup:
        public.lookup(created.token)
    with pytest.raises(NotFound) as download:
        public.download(created.token)
    assert lookup.value.code == download.value.code == "ShareNotFound"
    assert owner_shares.for_file(owner, file_id).items[0].state == "EXPIRED"


def test_expired_share_answers_404_through_the_handler(
    api_stack: StackFixture, client: ApiClient, seed: Seeder
) -> None:
    owner = new_user()
    file_id = seed.file(owner, Status.READY)
    eight_days_ago = Clock(datetime.now(UTC) - timedelta(days=8))
    owner_shares, _, _ = _services(api_stack, eight_days_ago)
    created = owner_shares.create(owner, file_id, CreateShareRequest())

    lookup = client.call("get_share", path={"token": created.token})
    download = client.call("download_share", path={"token": created.token})

    assert lookup.status == download.status == 404
    assert lookup.body == client.call("get_share", path={"token": new_share_token()}).body
    assert _share_item(seed, created.token)["downloads"] == 0  # type: ignore[index]


def test_the_download_limit_is_enforced_by_the_conditional_update(
    api_stack: StackFixture, seed: Seeder
) -> None:
    """Racing downloads all pass the read check; only the conditional UpdateItem keeps the count honest."""
    owner = new_user()
    file_id = seed.file(owner, Status.READY)
    clock = Clock(datetime.now(UTC))
    owner_shares, _, shares = _services(api_stack, clock)
    created = owner_shares.create(owner, file_id, CreateShareRequest(maxDownloads=3))
    now_epoch = int(clock.now.timestamp())

    results = [shares.count_download(created.shareId, now_epoch) for _ in range(5)]

    assert [result is not None for result in results] == [True, True, True, False, False]
    assert results[2] is not None
    assert results[2]["downloads"] == 3
    assert shares.count_download(created.shareId, now_epoch + 8 * 86400) is None
    assert shares.count_download(share_id_for(new_share_token()), now_epoch) is None


def test_ten_thousand_tokens_are_unique_url_safe_and_long_enough() -> None:
    tokens = [new_share_token() for _ in range(10_000)]

    assert len(set(tokens)) == 10_000
    assert all(len(token) >= 22 and URL_SAFE.fullmatch(token) for token in tokens)
    assert len({share_id_for(token) for token in tokens}) == 10_000
