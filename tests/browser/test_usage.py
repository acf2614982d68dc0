"""The usage line in Chromium: "… of 5 GB used" under the heading, updated as an upload takes its bytes."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import BrowserSession
from tests.browser.ui import Axe, Upload, assert_accessible, choose_files, expect_status, file_row, focused

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

DEFAULT_QUOTA = 5 * 1024**3  # the template's UserStorageQuotaBytes
NOTES = Upload("usage-notes.txt", "text/plain", b"minutes of the usage meeting\n" * 12_000)  # 340 KB


def _sentence(page: Page, used: int, quota: int) -> str:
    """The line as the page words it, from the page's own module."""
    text: str = page.evaluate(
        "async ([used, quota]) => (await import('/js/usage.js')).usageSentence(used, quota)", [used, quota]
    )
    return text


def _is_usage(response: Any) -> bool:
    return bool(response.url.endswith("/me/usage") and response.request.method == "GET")


def test_the_usage_line_shows_the_quota_and_grows_with_an_upload(session: BrowserSession, axe: Axe) -> None:
    page = session.new_page()
    with page.expect_response(_is_usage) as first:
        session.sign_in(page)
    before = first.value.json()
    line = page.get_by_test_id("usage")

    assert before["quotaBytes"] == DEFAULT_QUOTA
    expect(line).to_have_text(_sentence(page, before["usedBytes"], DEFAULT_QUOTA))
    expect(line).to_contain_text("of 5 GB used")
    assert _sentence(page, int(2.1 * 1024**3), DEFAULT_QUOTA) == "2.1 of 5 GB used"
    assert _sentence(page, len(NOTES.data), DEFAULT_QUOTA) == "340 KB of 5 GB used"

    choose_files(page, NOTES)
    expect_status(file_row(page, NOTES.name), "READY", "Ready")

    expect(line).to_have_text(_sentence(page, before["usedBytes"] + len(NOTES.data), DEFAULT_QUOTA))
    session.screenshot(page, "usage-line")
    # Text only: no focus stop of its own, and the page stays clean for axe.
    page.get_by_role("heading", name="Your files").focus()
    page.keyboard.press("Tab")
    assert (focused(page) or {}).get("testid") != "usage"
    assert_accessible(axe, page, "files page with its usage line")
