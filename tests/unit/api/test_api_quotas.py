"""Per-user quotas through the API: storage held at POST /uploads, the hourly upload limit, GET /me/usage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import api.handler
from api.quotas import HOLD_GRACE_SECONDS
from api.uploads import UPLOAD_URL_SECONDS
from common.settings import SettingsError
from common.usage import UsageLedger
from tests.stack import StackFixture
from tests.unit.api.support import ApiClient, ApiResponse, Seeder, new_user

QUOTA = 1000


class _Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    """The API's clock, held ten minutes into an hour so no hourly window ends mid-test."""
    now = datetime.now(UTC).replace(minute=10, second=0, microsecond=0)
    held = _Clock(now)
    services = api.handler.services
    monkeypatch.setattr(api.handler, "services", lambda: services(held))
    return held


@pytest.fixture
def limits(settings_env: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    settings_env.setenv("USER_STORAGE_QUOTA_BYTES", str(QUOTA))
    settings_env.setenv("USER_UPLOADS_PER_HOUR", "1000")
    return settings_env


@pytest.fixture
def ledger(api_stack: StackFixture) -> UsageLedger:
    return UsageLedger(api_stack.client("dynamodb"), api_stack.physical("FilesTable"))


def _upload(client: ApiClient, owner: str, size: int, name: str = "notes.txt") -> ApiResponse:
    return client.call(
        "create_upload", sub=owner, body={"name": name, "size": size, "contentType": "text/plain"}
    )


def _usage(client: ApiClient, owner: str) -> dict[str, Any]:
    response = client.call("get_usage", sub=owner)
    assert response.status == 200, response.body
    return dict(response.body)


@pytest.mark.usefixtures("clock")
def test_usage_of_a_new_user_is_empty_against_the_configured_limits(
    client: ApiClient, limits: pytest.MonkeyPatch
) -> None:
    usage = _usage(client, new_user())

    assert usage["usedBytes"] == usage["storedBytes"] == usage["reservedBytes"] == 0
    assert (usage["quotaBytes"], usage["uploadsPerHour"], usage["uploadsThisHour"]) == (QUOTA, 1000, 0)
    assert usage["hourResetsAt"].endswith(":00:00.000Z")


@pytest.mark.usefixtures("clock", "limits")
def test_storage_quota_admits_up_to_the_byte_and_refuses_one_more(client: ApiClient, seed: Seeder) -> None:
    owner = new_user()

    assert _upload(client, owner, 600).status == 201
    assert _upload(client, owner, QUOTA - 600).status == 201  # exactly at the quota
    refused = _upload(client, owner, 1)

    assert (refused.status, refused.error_code) == (409, "QuotaExceeded")
    assert refused.body["error"]["message"] == (
        "the file needs 1 bytes but only 0 of your 1000 bytes of storage are free; delete files to make room"
    )
    usage = _usage(client, owner)
    assert (usage["usedBytes"], usage["reservedBytes"], usage["storedBytes"]) == (QUOTA, QUOTA, 0)
    assert usage["uploadsThisHour"] == 2  # a refused upload is not counted
    files = client.call("list_files", sub=owner).body["items"]
    assert len(files) == 2


@pytest.mark.usefixtures("clock", "limits")
def test_a_file_larger_than_the_whole_quota_is_refused_and_creates_nothing(
    client: ApiClient, seed: Seeder
) -> None:
    owner = new_user()

    refused = _upload(client, owner, QUOTA + 1)

    assert (refused.status, refused.error_code) == (409, "QuotaExceeded")
    assert client.call("list_files", sub=owner).body["items"] == []
    assert _usage(client, owner)["usedBytes"] == 0
    assert not [item for item in seed.table_items() if item["pk"]["S"] == f"OWNER#{owner}"]


@pytest.mark.usefixtures("clock", "limits")
def test_quotas_are_per_user(client: ApiClient) -> None:
    alice, bob = new_user(), new_user()
    assert _upload(client, alice, QUOTA).status == 201

    assert _upload(client, bob, QUOTA).status == 201
    assert _usage(client, bob)["usedBytes"] == QUOTA
    assert _upload(client, alice, 1).error_code == "QuotaExceeded"


@pytest.mark.usefixtures("clock", "limits")
def test_aborting_an_upload_gives_its_bytes_back(client: ApiClient) -> None:
    owner = new_user()
    file_id = _upload(client, owner, QUOTA).body["fileId"]

    assert client.call("abort_upload", sub=owner, path={"fileId": file_id}).status == 204

    assert _usage(client, owner)["usedBytes"] == 0
    assert _upload(client, owner, QUOTA).status == 201


@pytest.mark.usefixtures("clock", "limits")
def test_deleting_a_stored_file_gives_its_bytes_back_once(client: ApiClient, ledger: UsageLedger) -> None:
    owner = new_user()
    file_id = _upload(client, owner, 700).body["fileId"]
    assert ledger.store(owner, file_id, 650)  # what the workflow's record step does at READY
    assert not ledger.store(owner, file_id, 650)  # a duplicate or a replay counts nothing more
    usage = _usage(client, owner)
    assert (usage["storedBytes"], usage["reservedBytes"]) == (650, 0)

    assert client.call("delete_file", sub=owner, path={"fileId": file_id}).status == 204
    again = client.call("delete_file", sub=owner, path={"fileId": file_id})

    assert (again.status, again.error_code) == (404, "FileNotFound")
    assert _usage(client, owner)["usedBytes"] == 0
    assert ledger.unstore(owner, file_id) == 0


@pytest.mark.usefixtures("limits")
def test_holds_of_uploads_never_sent_expire_and_free_their_bytes(client: ApiClient, clock: _Clock) -> None:
    owner = new_user()
    assert _upload(client, owner, QUOTA).status == 201
    clock.now += timedelta(seconds=UPLOAD_URL_SECONDS + HOLD_GRACE_SECONDS - 1)
    assert _upload(client, owner, 1).error_code == "QuotaExceeded"  # the hold still stands

    clock.now += timedelta(seconds=2)

    assert _usage(client, owner)["reservedBytes"] == 0
    assert _upload(client, owner, QUOTA).status == 201
    assert _usage(client, owner)["reservedBytes"] == QUOTA


def test_upload_rate_admits_the_hours_limit_then_answers_429_until_the_next_hour(
    client: ApiClient, settings_env: pytest.MonkeyPatch, clock: _Clock
) -> None:
    settings_env.setenv("USER_UPLOADS_PER_HOUR", "3")
    owner = new_user()
    for _ in range(3):
        assert _upload(client, owner, 10).status == 201

    limited = _upload(client, owner, 10)

    assert (limited.status, limited.error_code) == (429, "UploadRateExceeded")
    assert limited.headers["Retry-After"] == str(50 * 60)  # the clock stands ten minutes into its hour
    assert limited.body["error"]["message"] == "at most 3 uploads an hour; try again in 50 minutes"
    usage = _usage(client, owner)
    assert (usage["uploadsThisHour"], usage["reservedBytes"]) == (3, 30)  # the refused one holds nothing
    assert len(client.call("list_files", sub=owner).body["items"]) == 3

    clock.now += timedelta(minutes=50)

    assert _upload(client, owner, 10).status == 201
    assert _usage(client, owner)["uploadsThisHour"] == 1


def test_a_storage_refusal_does_not_use_up_an_upload_of_the_hour(
    client: ApiClient, settings_env: pytest.MonkeyPatch, clock: _Clock
) -> None:
    settings_env.setenv("USER_STORAGE_QUOTA_BYTES", "100")
    settings_env.setenv("USER_UPLOADS_PER_HOUR", "1")
    owner = new_user()

    assert _upload(client, owner, 101).error_code == "QuotaExceeded"
    assert _upload(client, owner, 100).status == 201
    assert _upload(client, owner, 1).error_code == "QuotaExceeded"


@pytest.mark.parametrize("variable", ["USER_STORAGE_QUOTA_BYTES", "USER_UPLOADS_PER_HOUR"])
@pytest.mark.parametrize("value", [None, "0", "-5", "5GB", ""])
def test_bad_limits_are_refused_at_cold_start(
    client: ApiClient, settings_env: pytest.MonkeyPatch, variable: str, value: str | None
) -> None:
    if value is None:
        settings_env.delenv(variable)
    else:
        settings_env.setenv(variable, value)

    with pytest.raises(SettingsError, match=variable):
        client.send("get_usage", client.event("get_usage", sub=new_user()))
