"""`filepipe local` over HTTP: a protected link to two files, changed by its owner, downloaded, logged, and
its owner emailed through the event bus and the notify function, each with the IAM grants of the template."""

from __future__ import annotations

import time

import pytest

from filepipe.bench.e2e import sample_jpeg
from filepipe.local.client import BrowserClient
from filepipe.runtime_state import DEMO_EMAIL, DEMO_PASSWORD
from tests.local.conftest import LocalProcess

pytestmark = pytest.mark.local

READY_WITHIN_SECONDS = 10.0
EMAIL_WITHIN_SECONDS = 10.0
PASSWORD = "harbour-lights"


@pytest.fixture(scope="module")
def browser(local_stack: LocalProcess) -> BrowserClient:
    client = BrowserClient(local_stack.web_url)
    client.sign_in(DEMO_EMAIL, DEMO_PASSWORD)
    return client


def _counts(local_stack: LocalProcess) -> tuple[dict[str, int], dict[str, int]]:
    status = local_stack.status()
    return status["requests"], status["invocations"]  # type: ignore[return-value]


def test_a_protected_link_to_two_files_is_changed_downloaded_logged_and_told(
    local_stack: LocalProcess, browser: BrowserClient
) -> None:
    photo, notes = sample_jpeg(64 * 1024), b"meeting notes\n" * 50
    file_ids = [
        browser.upload("quay.jpg", photo, "image/jpeg"),
        browser.upload("notes.txt", notes, "text/plain"),
    ]
    for file_id in file_ids:
        assert browser.wait_final(file_id, timeout=READY_WITHIN_SECONDS)["status"] == "READY"

    created = browser.call(
        "POST", "/shares", {"fileIds": file_ids, "password": PASSWORD, "notifyOn": "FIRST"}, expect=201
    )
    token = created["token"]
    assert browser.call("GET", f"/shares/{token}", auth=False) == {"passwordRequired": True}
    wrong = browser.request("POST", f"/shares/{token}/unlock", {"password": "guess-again"}, auth=False)
    unknown = browser.request("POST", "/shares/" + "x" * 43 + "/unlock", {"password": PASSWORD}, auth=False)
    assert wrong.status_code == unknown.status_code == 404
    assert wrong.json() == unknown.json()
    page = browser.call("POST", f"/shares/{token}/unlock", {"password": PASSWORD}, auth=False)
    assert [item["name"] for item in page["files"]] == ["quay.jpg", "notes.txt"]
    assert page["files"][0]["thumbnailUrl"]

    changed = browser.call(
        "PATCH", f"/shares/{created['shareId']}", {"maxDownloads": 3, "expiresInSeconds": 3600}
    )
    assert (changed["maxDownloads"], changed["passwordProtected"]) == (3, True)

    requests_before, invocations_before = _counts(local_stack)
    link = browser.call(
        "POST", f"/shares/{token}/download", {"password": PASSWORD, "fileId": file_ids[1]}, auth=False
    )
    assert browser.download(link["url"]).content == notes
    deadline = time.monotonic() + EMAIL_WITHIN_SECONDS
    while True:  # the owner's email follows the download through the bus and the notify function
        requests_now, invocations_now = _counts(local_stack)
        sent = requests_now.get("ses SendEmail", 0) - requests_before.get("ses SendEmail", 0)
        if sent >= 1:
            break
        assert time.monotonic() < deadline, f"no email: {requests_now} {invocations_now}"
        time.sleep(0.2)
    assert invocations_now["NotifyFunction"] - invocations_before.get("NotifyFunction", 0) == 1
    assert requests_now["events PutEvents"] - requests_before.get("events PutEvents", 0) == 1

    second = browser.call(
        "POST", f"/shares/{token}/download", {"password": PASSWORD, "fileId": file_ids[0]}, auth=False
    )
    assert browser.download(second["url"]).content == photo
    log = browser.call("GET", f"/shares/{created['shareId']}/downloads")
    assert [(entry["download"], entry["fileName"]) for entry in log["items"]] == [
        (2, "quay.jpg"),
        (1, "notes.txt"),
    ]
    assert {entry["browser"] for entry in log["items"]} == {"Other"}  # python-requests

    assert browser.request("DELETE", f"/shares/{created['shareId']}").status_code == 204
    assert browser.request("GET", f"/shares/{created['shareId']}/downloads").status_code == 404
    assert browser.request("GET", f"/shares/{token}", auth=False).status_code == 404
    time.sleep(0.5)
    requests_after, _ = _counts(local_stack)
    assert requests_after.get("ses SendEmail", 0) - requests_before.get("ses SendEmail", 0) == 1  # first only


def test_a_browser_may_send_patch_from_the_web_origin(
    local_stack: LocalProcess, browser: BrowserClient
) -> None:
    preflight = browser.http.options(
        f"{browser.api_url}/shares/{'a' * 64}",
        headers={
            "Origin": local_stack.web_url,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
        timeout=10,
    )

    assert preflight.status_code in (200, 204)
    assert "PATCH" in preflight.headers["Access-Control-Allow-Methods"]
