"""axe-core on the web UI's pages: no serious or critical accessibility violations, in light and dark."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests import images
from tests.browser.conftest import BrowserSession
from tests.browser.ui import (
    Axe,
    Upload,
    assert_accessible,
    choose_files,
    expect_status,
    file_row,
    loaded_image,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


def test_pages_have_no_serious_accessibility_violations(session: BrowserSession, axe: Axe) -> None:
    page = session.new_page()
    page.goto(session.site.web_url)
    expect(page.get_by_role("heading", name="Sign in to filepipe")).to_be_visible()
    assert_accessible(axe, page, "the sign-in page")

    session.sign_in(page)
    photo = Upload("lighthouse.jpg", "image/jpeg", images.jpeg((600, 400)))
    report = Upload("annual-report.pdf", "application/pdf", images.pdf(2))
    disguised = Upload("not-a-photo.jpg", "image/jpeg", images.exe())
    choose_files(page, photo, report, disguised)
    expect_status(file_row(page, photo.name), "READY", "Ready")
    expect_status(file_row(page, report.name), "READY", "Ready")
    expect_status(file_row(page, disguised.name), "REJECTED", "Rejected")
    loaded_image(page, file_row(page, photo.name).locator(".thumb img"))
    assert_accessible(axe, page, "the files page")
    session.screenshot(page, "files")

    page.get_by_role("button", name=f"Share {photo.name}").click()
    dialog = page.get_by_test_id("share-dialog")
    dialog.get_by_role("button", name="Create link").click()
    share_url = dialog.get_by_test_id("share-url")
    expect(share_url).to_have_value(re.compile(r"/s/[^/]+$"))
    expect(dialog.get_by_test_id("share-item")).to_have_count(1)
    assert_accessible(axe, page, "the share dialog")
    session.screenshot(page, "share-dialog", full_page=False)

    stranger = session.new_page()
    stranger.goto(share_url.input_value())
    expect(stranger.get_by_test_id("share-page")).to_be_visible()
    loaded_image(stranger, stranger.locator("img.share-thumb"))
    assert_accessible(axe, stranger, "the share page")
    session.screenshot(stranger, "share-page")

    stranger.goto(f"{session.site.web_url}/s/no-such-link")
    expect(stranger.get_by_test_id("share-gone")).to_be_visible()
    assert_accessible(axe, stranger, "the page of a link that does not work")
    session.screenshot(stranger, "share-gone")
