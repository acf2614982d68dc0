"""Shares under control in Chromium: a password, more files in one link, changing a link, its download log;
the visitor's side of a protected link; all of it by keyboard alone, and axe-clean."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from tests import images
from tests.browser.conftest import BrowserSession
from tests.browser.test_keyboard import COUNT_POINTER_INPUT
from tests.browser.ui import (
    Axe,
    Upload,
    assert_accessible,
    assert_left_red_right_blue,
    choose_files,
    expect_status,
    fetch_image,
    file_row,
    focused,
    loaded_image,
    tab_to,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

PASSWORD = "blue-harbour-42"
ONE_DAY_SECONDS = "86400"


def _only_share(dialog: Locator) -> Locator:
    item = dialog.get_by_test_id("share-item")
    expect(item).to_have_count(1)
    return item


def test_owner_protects_a_link_to_two_files_changes_it_and_reads_its_log(
    session: BrowserSession, axe: Axe
) -> None:
    page = session.new_page()
    session.sign_in(page)
    photo = Upload("pier-at-dusk.jpg", "image/jpeg", images.jpeg((800, 600)))
    leaflet = Upload("pier-leaflet.pdf", "application/pdf", images.pdf(2))
    choose_files(page, photo, leaflet)
    for upload in (photo, leaflet):
        expect_status(file_row(page, upload.name), "READY", "Ready")

    page.get_by_role("button", name=f"Share {photo.name}").click()
    dialog = page.get_by_test_id("share-dialog")
    dialog.get_by_label("Password").fill(PASSWORD)
    dialog.get_by_label("Tell me when it is downloaded").select_option(label="On every download")
    more = dialog.get_by_test_id("share-more-files")
    expect(more).to_be_visible()
    more.locator("summary").click()
    more.get_by_label(leaflet.name).check()
    dialog.get_by_role("button", name="Create link").click()
    share_url = dialog.get_by_test_id("share-url")
    expect(share_url).to_have_value(re.compile(rf"^{re.escape(session.site.web_url)}/s/[^/]+$"))
    link = share_url.input_value()
    expect(dialog.get_by_test_id("share-result")).to_contain_text("Send the password separately")
    share = _only_share(dialog)
    expect(share.get_by_test_id("share-settings")).to_have_text(
        "2 files · Password · Tells you on every download"
    )
    assert_accessible(axe, page, "the share dialog with a protected link")
    session.screenshot(page, "protected-link", full_page=False)

    visitor = session.new_page()
    visitor.goto(link)
    locked = visitor.get_by_test_id("share-locked")
    expect(locked.get_by_role("heading", name="This link is protected")).to_be_visible()
    expect(visitor.get_by_text(photo.name)).to_have_count(0)  # nothing about the files before the password
    visitor.get_by_label("Password").fill("not-the-password")
    visitor.get_by_role("button", name="Open").click()
    expect(visitor.get_by_test_id("share-unlock-error")).to_contain_text("doesn't open this link")
    visitor.get_by_label("Password").fill(PASSWORD)
    visitor.get_by_role("button", name="Open").click()
    files = visitor.get_by_test_id("share-file")
    expect(visitor.get_by_role("heading", name="2 files shared with you")).to_be_visible()
    expect(files).to_have_count(2)
    expect(files.nth(0)).to_contain_text(photo.name)
    expect(files.nth(1)).to_contain_text(leaflet.name)
    assert_left_red_right_blue(fetch_image(visitor, loaded_image(visitor, files.nth(0).locator("img"))))
    with visitor.expect_download() as leaflet_download:
        visitor.get_by_role("button", name=f"Download {leaflet.name}").click()
    assert leaflet_download.value.suggested_filename == leaflet.name
    assert Path(leaflet_download.value.path()).read_bytes() == leaflet.data
    session.screenshot(visitor, "protected-page-open")

    share.get_by_role("button", name=re.compile(r"^Downloads")).click()
    rows = share.get_by_test_id("share-log-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(leaflet.name)
    expect(rows.first).to_contain_text("Chrome")
    expect(rows.first).to_contain_text("Linux")

    share.get_by_role("button", name=re.compile(r"^Change")).click()
    share.get_by_label("Expiry").select_option(label="1 day from now")
    share.get_by_label("Download limit").fill("5")
    share.get_by_role("button", name="Save changes").click()
    share = _only_share(dialog)
    expect(share).to_contain_text("1 of 5 downloads")
    expect(share.get_by_role("button", name=re.compile(r"^Change"))).to_be_focused()
    expect(share.get_by_test_id("share-log-row")).to_have_count(1)  # the open log stays open
    assert_accessible(axe, page, "the share dialog with its download log")
    session.screenshot(page, "changed-link", full_page=False)


def _press(page: Page, key: str) -> None:
    page.keyboard.press(key)


def test_protected_link_with_the_keyboard_only(session: BrowserSession, axe: Axe) -> None:
    page = session.new_page()
    page.context.add_init_script(COUNT_POINTER_INPUT)
    _sign_in_by_keyboard(session, page)
    note = Upload("keyboard-locked.png", "image/png", images.png((320, 240)))
    tab_to(page, testid="file-input")
    page.locator(":focus").set_input_files(note.payload())
    row = file_row(page, note.name)
    expect_status(row, "READY", "Ready")

    tab_to(page, name=f"Share {note.name}")
    _press(page, "Enter")
    dialog = page.get_by_test_id("share-dialog")
    expect(dialog.get_by_test_id("share-expiry")).to_be_focused()
    assert tab_to(page, testid="share-password")["type"] == "password"
    page.keyboard.type(PASSWORD)
    tab_to(page, name="Create link")
    _press(page, "Enter")
    expect(dialog.get_by_test_id("copy-link")).to_be_focused()
    expect(dialog.get_by_test_id("share-url")).to_have_value(re.compile(r"/s/[^/]+$"))
    link = dialog.get_by_test_id("share-url").input_value()
    share = _only_share(dialog)
    expect(share.get_by_test_id("share-settings")).to_have_text("Password")

    tab_to(page, testid="edit-share")
    _press(page, "Enter")
    expiry = share.get_by_test_id("share-edit-expiry")
    expect(expiry).to_be_focused()
    page.keyboard.type("1")  # "1 day from now"
    expect(expiry).to_have_value(ONE_DAY_SECONDS)
    tab_to(page, testid="share-edit-limit")
    page.keyboard.type("2")
    tab_to(page, testid="save-share")
    _press(page, "Enter")
    share = _only_share(dialog)
    expect(share.get_by_test_id("edit-share")).to_be_focused()
    expect(share).to_contain_text("0 of 2 downloads")
    tab_to(page, testid="share-log-button")
    _press(page, "Enter")
    expect(share.get_by_test_id("share-log-empty")).to_have_text("No downloads yet.")
    assert_accessible(axe, page, "the changed link with its empty log")
    session.screenshot(page, "keyboard-changed-link", full_page=False)

    visitor = session.new_page()
    visitor.context.add_init_script(COUNT_POINTER_INPUT)
    visitor.goto(link)
    password = visitor.get_by_test_id("share-unlock-password")
    expect(password).to_be_focused()
    assert_accessible(axe, visitor, "the password page of a protected link")
    visitor.keyboard.type("wrong-guess")
    _press(visitor, "Enter")
    error = visitor.get_by_test_id("share-unlock-error")
    expect(error).to_be_visible()
    expect(password).to_be_focused()
    expect(password).to_have_attribute("aria-invalid", "true")
    visitor.keyboard.press("Control+A")
    visitor.keyboard.type(PASSWORD)
    _press(visitor, "Enter")
    heading = visitor.get_by_role("heading", name=note.name)
    expect(heading).to_be_focused()
    expect(visitor.get_by_test_id("share-limits")).to_contain_text("2 downloads left")
    assert_accessible(axe, visitor, "an opened protected link")
    session.screenshot(visitor, "keyboard-opened")
    assert tab_to(visitor, testid="share-download")["focusVisible"]
    with visitor.expect_download() as download:
        _press(visitor, "Enter")
    assert Path(download.value.path()).read_bytes() == note.data
    expect(visitor.get_by_test_id("share-status")).to_have_text("Your download has started.")

    assert (focused(page) or {}).get("testid") == "share-log-button"  # where the owner left it
    _press(page, "Enter")  # closes the log
    _press(page, "Enter")  # and opens it again, read afresh
    rows = share.get_by_test_id("share-log-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(note.name)
    assert (focused(page) or {}).get("testid") == "share-log-button"
    for where in (page, visitor):
        assert where.evaluate("() => window.__pointerInput") == 0, "the pass used pointer input"


def _sign_in_by_keyboard(session: BrowserSession, page: Page) -> None:
    page.goto(session.site.web_url)
    expect(page.get_by_role("heading", name="Sign in to filepipe")).to_be_visible()
    page.keyboard.type(session.site.email)
    tab_to(page, name="Password")
    page.keyboard.type(session.site.password)
    _press(page, "Enter")
    expect(page.get_by_role("heading", name="Your files")).to_be_focused(timeout=20_000)
