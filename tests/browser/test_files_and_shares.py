"""The web UI in Chromium: sign in, upload, watch files get ready, share one, download it as a stranger."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from filepipe.local.client import BrowserClient
from tests import images
from tests.browser.conftest import BrowserSession
from tests.browser.ui import (
    Upload,
    assert_left_red_right_blue,
    choose_files,
    expect_status,
    fetch_image,
    file_row,
    loaded_image,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

THUMBNAIL_SIZE = 256


def test_upload_process_share_and_download(session: BrowserSession) -> None:
    page = session.new_page()
    session.sign_in(page)
    photo = Upload("harbour.jpg", "image/jpeg", images.jpeg((800, 600)))
    poster = Upload("poster.png", "image/png", images.png((640, 480)))
    minutes = Upload("minutes.pdf", "application/pdf", images.pdf(3))
    choose_files(page, photo, poster, minutes)

    for upload in (photo, poster, minutes):
        expect_status(file_row(page, upload.name), "READY", "Ready")
    for upload in (photo, poster):
        source = loaded_image(page, file_row(page, upload.name).locator(".thumb img"))
        thumbnail = fetch_image(page, source)
        assert thumbnail.format == "WEBP"
        assert max(thumbnail.size) == THUMBNAIL_SIZE
        assert_left_red_right_blue(thumbnail)
    minutes_row = file_row(page, minutes.name)
    expect(minutes_row.locator(".thumb img")).to_have_count(0)
    expect(minutes_row.locator(".thumb")).to_have_attribute("data-kind", "doc")
    session.screenshot(page, "files-ready")

    with page.expect_download() as owner_download:
        minutes_row.get_by_role("button", name=f"Download {minutes.name}").click()
    assert owner_download.value.suggested_filename == minutes.name
    assert Path(owner_download.value.path()).read_bytes() == minutes.data

    page.get_by_role("button", name=f"Share {photo.name}").click()
    dialog = page.get_by_test_id("share-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Link expires after").select_option(label="1 day")
    dialog.get_by_label("Download limit").fill("2")
    dialog.get_by_role("button", name="Create link").click()
    share_url = dialog.get_by_test_id("share-url")
    expect(share_url).to_have_value(re.compile(rf"^{re.escape(session.site.web_url)}/s/[^/]+$"))
    link = share_url.input_value()
    shares = dialog.get_by_test_id("share-item")
    expect(shares).to_have_count(1)
    expect(shares).to_contain_text("0 of 2 downloads")
    session.screenshot(page, "share-dialog", full_page=False)

    stranger = session.new_page()
    stranger.goto(link)
    card = stranger.get_by_test_id("share-page")
    expect(card).to_be_visible()
    expect(card.get_by_role("heading", name=photo.name)).to_be_visible()
    expect(stranger.get_by_test_id("share-limits")).to_contain_text("2 downloads left")
    assert_left_red_right_blue(fetch_image(stranger, loaded_image(stranger, card.locator("img.share-thumb"))))
    with stranger.expect_download() as shared_download:
        stranger.get_by_test_id("share-download").click()
    assert shared_download.value.suggested_filename == photo.name
    assert Path(shared_download.value.path()).read_bytes() == photo.data
    expect(stranger.get_by_test_id("share-status")).to_have_text("Your download has started.")
    session.screenshot(stranger, "share-page")

    stranger.reload()
    expect(stranger.get_by_test_id("share-limits")).to_contain_text("1 download left")
    page.get_by_role("button", name="Close", exact=True).click()
    expect(dialog).to_be_hidden()
    page.get_by_role("button", name=f"Share {photo.name}").click()
    expect(page.get_by_test_id("share-item")).to_contain_text("1 of 2 downloads")


def test_executable_renamed_jpg_shows_why_it_was_rejected(session: BrowserSession) -> None:
    page = session.new_page()
    session.sign_in(page)
    disguised = Upload("invoice-scan.jpg", "image/jpeg", images.exe())
    choose_files(page, disguised)

    row = file_row(page, disguised.name)
    expect_status(row, "REJECTED", "Rejected")
    hint = row.get_by_test_id("file-hint")
    expect(hint).to_be_visible()
    expect(hint).to_contain_text("not accepted")
    file_id = row.get_attribute("data-file-id")
    assert file_id
    api = BrowserClient(session.site.web_url)
    api.sign_in(session.site.email, session.site.password)
    record = api.call("GET", f"/files/{file_id}")
    assert record["status"] == "REJECTED"
    expect(hint).to_have_text(record["error"]["message"])
    expect(row.get_by_role("button", name=re.compile(r"^(Share|Download) "))).to_have_count(0)
    expect(row.locator(".thumb img")).to_have_count(0)
    session.screenshot(page, "rejected")
