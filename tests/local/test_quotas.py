"""`filepipe local` over HTTP with small per-user limits: storage held at issue, counted at READY, given back
on abort and delete, and the hourly upload limit, each with the IAM grants of the template."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from filepipe.local.client import BrowserClient
from filepipe.runtime_state import DEMO_EMAIL, DEMO_PASSWORD
from tests.local.conftest import DEMO_EMAIL_ARGS, LocalProcess, settled_usage

pytestmark = pytest.mark.local

QUOTA = 100_000
UPLOADS_PER_HOUR = 4
READY_WITHIN_SECONDS = 10.0


@pytest.fixture(scope="module")
def small_limits(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalProcess]:
    limits = [
        *("--parameter", f"UserStorageQuotaBytes={QUOTA}"),
        *("--parameter", f"UserUploadsPerHour={UPLOADS_PER_HOUR}"),
    ]
    running = LocalProcess(tmp_path_factory.mktemp("filepipe-quotas"), [*DEMO_EMAIL_ARGS, *limits])
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser(small_limits: LocalProcess) -> BrowserClient:
    client = BrowserClient(small_limits.web_url)
    client.sign_in(DEMO_EMAIL, DEMO_PASSWORD)
    return client


def _usage(browser: BrowserClient) -> tuple[int, int, int]:
    usage: dict[str, Any] = browser.call("GET", "/me/usage")
    assert (usage["quotaBytes"], usage["uploadsPerHour"]) == (QUOTA, UPLOADS_PER_HOUR)
    return usage["storedBytes"], usage["reservedBytes"], usage["uploadsThisHour"]


def _ask(browser: BrowserClient, size: int) -> Any:
    return browser.request(
        "POST", "/uploads", {"name": "notes.txt", "size": size, "contentType": "text/plain"}
    )


def _within_one_hour() -> None:
    """The runtime's hourly counter starts again on the hour: a test begun in its last minute waits it out."""
    left = 3600 - time.time() % 3600
    if left < 60:
        time.sleep(left + 1)


def test_storage_and_upload_limits_over_http(browser: BrowserClient) -> None:
    _within_one_hour()
    assert _usage(browser) == (0, 0, 0)
    notes = b"minutes of the quota meeting\n" * 1_380  # 40,020 bytes
    stored = browser.upload("minutes.txt", notes, "text/plain")
    assert browser.wait_final(stored, timeout=READY_WITHIN_SECONDS)["status"] == "READY"
    settled_usage(browser, len(notes))
    assert _usage(browser) == (len(notes), 0, 1)

    rest = _ask(browser, QUOTA - len(notes))  # to the byte
    assert rest.status_code == 201, rest.text
    over = _ask(browser, 1)
    assert over.status_code == 409
    assert over.json()["error"]["code"] == "QuotaExceeded"
    assert _usage(browser) == (len(notes), QUOTA - len(notes), 2)

    browser.call("DELETE", f"/uploads/{rest.json()['fileId']}", expect=204)
    assert _usage(browser) == (len(notes), 0, 2)
    for _ in range(UPLOADS_PER_HOUR - 2):
        assert _ask(browser, 1_000).status_code == 201
    limited = _ask(browser, 1_000)
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "UploadRateExceeded"
    assert 0 < int(limited.headers["Retry-After"]) <= 3600

    browser.call("DELETE", f"/files/{stored}", expect=204)
    assert _usage(browser) == (0, 2_000, UPLOADS_PER_HOUR)
