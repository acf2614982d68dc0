"""Request links in Chromium: the owner makes one in the files app; a guest without an account opens it with
its password and sends a clean file and an infected one by keyboard alone, seeing each one's outcome; the
owner finds both marked in their files and revokes the link. Axe-clean in light and dark."""

from __future__ import annotations

import re

import pytest
import requests
from playwright.sync_api import Locator, Page, expect

from filepipe.clamd import eicar_bytes
from tests import images
from tests.browser.conftest import BrowserSession
from tests.browser.test_keyboard import COUNT_POINTER_INPUT
from tests.browser.ui import (
    READY_TIMEOUT_MS,
    Axe,
    Upload,
    assert_accessible,
    expect_status,
    file_row,
    id_token,
    tab_to,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

PASSWORD = "lighthouse-keeper-7"
NOTE = "Please send the signed lease\nand a photo of the meter."


def _guest_upload(page: Page, name: str) -> Locator:
    return page.get_by_test_id("request-upload").filter(
        has=page.locator(".file-name").get_by_text(name, exact=True)
    )


def test_a_guest_sends_files_through_a_request_link_by_keyboard_and_the_owner_receives_them(
    session: BrowserSession, axe: Axe
) -> None:
    owner = session.new_page()
    session.sign_in(owner)
    owner.get_by_role("button", name="Request files").click()
    dialog = owner.get_by_test_id("requests-dialog")
    expect(dialog.get_by_label("Link expires after")).to_be_focused()
    dialog.get_by_label("Most files").fill("2")
    dialog.get_by_label("Password").fill(PASSWORD)
    dialog.get_by_label("Note for your guests").fill(NOTE)
    dialog.get_by_role("button", name="Create link").click()
    url = dialog.get_by_test_id("request-url")
    expect(url).to_have_value(re.compile(rf"^{re.escape(session.site.web_url)}/r/[^/]+$"))
    expect(dialog.get_by_test_id("copy-request-link")).to_be_focused()
    link = url.input_value()
    item = dialog.get_by_test_id("request-item")
    expect(item).to_have_count(1)
    expect(item.get_by_test_id("request-received")).to_contain_text("0 of 2 files")
    expect(item.get_by_test_id("request-received")).to_contain_text("Password")
    assert_accessible(axe, owner, "the request links dialog with a new link")
    session.screenshot(owner, "request-link-created", full_page=False)

    guest = session.new_page()
    guest.context.add_init_script(COUNT_POINTER_INPUT)
    guest.goto(link)
    password = guest.get_by_test_id("request-unlock-password")
    expect(password).to_be_focused()
    expect(guest.get_by_text("signed lease")).to_have_count(0)  # nothing before the password
    assert_accessible(axe, guest, "the password page of a request link")
    guest.keyboard.type("not-the-password")
    guest.keyboard.press("Enter")
    expect(guest.get_by_test_id("request-unlock-error")).to_contain_text("doesn't open this link")
    expect(password).to_be_focused()
    guest.keyboard.press("Control+A")
    guest.keyboard.type(PASSWORD)
    guest.keyboard.press("Enter")
    expect(guest.get_by_role("heading", name="Send files")).to_be_focused()
    expect(guest.get_by_test_id("request-note")).to_contain_text("signed lease")
    expect(guest.get_by_test_id("request-limits")).to_contain_text("You can send 2 more files")
    assert_accessible(axe, guest, "an opened request link")

    photo = Upload("meter.png", "image/png", images.png((320, 240)))
    infected = Upload("lease-notes.txt", "text/plain", eicar_bytes())
    chosen = tab_to(guest, testid="request-file-input")
    assert chosen["focusVisible"]
    guest.locator(":focus").set_input_files([photo.payload(), infected.payload()])
    delivered = _guest_upload(guest, photo.name)
    quarantined = _guest_upload(guest, infected.name)
    expect(delivered).to_have_attribute("data-status", "READY", timeout=READY_TIMEOUT_MS)
    expect(delivered.get_by_test_id("request-upload-status")).to_have_text("Delivered")
    expect(quarantined).to_have_attribute("data-status", "QUARANTINED", timeout=READY_TIMEOUT_MS)
    expect(quarantined.get_by_test_id("request-upload-status")).to_have_text("Quarantined")
    expect(quarantined.get_by_test_id("request-upload-hint")).to_contain_text("Malware was found")
    expect(guest.get_by_test_id("request-full")).to_be_visible()
    expect(guest.get_by_test_id("request-dropzone")).to_be_hidden()
    expect(guest.locator("a[href*='files/'], [download]")).to_have_count(0)  # no way to fetch anything
    assert_accessible(axe, guest, "a request link with each file's outcome")
    session.screenshot(guest, "guest-outcomes")
    assert guest.evaluate("() => window.__pointerInput") == 0, "the guest used pointer input"

    dialog.get_by_role("button", name="Close").click()
    owner.get_by_test_id("refresh-files").click()
    for upload, status, label in ((photo, "READY", "Ready"), (infected, "QUARANTINED", "Quarantined")):
        row = file_row(owner, upload.name)
        expect_status(row, status, label)
        expect(row).to_contain_text("sent through a request link")
    expect(file_row(owner, infected.name).get_by_role("button", name=re.compile("^Download"))).to_have_count(
        0
    )

    owner.get_by_role("button", name="Request files").click()
    item = owner.get_by_test_id("requests-dialog").get_by_test_id("request-item")
    expect(item).to_contain_text("Full request link")
    expect(item.get_by_test_id("request-received")).to_contain_text("2 of 2 files")
    item.get_by_role("button", name=re.compile("^Revoke")).click()
    owner.get_by_test_id("confirm-button").click()
    expect(owner.get_by_test_id("requests-dialog").get_by_test_id("request-item")).to_have_count(0)
    session.screenshot(owner, "request-link-revoked", full_page=False)

    # The reloaded page asks after the uploads this browser sent through the link: a revoked link answers
    # for none of them (404), so the page says the link is gone.
    session.console.expected_failures.append(
        f"{session.site.api_url}/requests/{link.rsplit('/', 1)[1]}/status"
    )
    guest.reload()
    expect(guest.get_by_test_id("request-gone")).to_be_visible()
    expect(guest.get_by_role("heading", name="This link doesn't work")).to_be_focused()


def test_an_owner_changes_a_request_links_limits_password_and_note_by_keyboard(
    session: BrowserSession, axe: Axe
) -> None:
    owner = session.new_page()
    session.sign_in(owner)
    made = requests.post(
        f"{session.site.api_url}/requests",
        headers={"Authorization": f"Bearer {id_token(owner)}"},
        json={"maxFiles": 2, "maxBytes": 3 * 1024**2, "note": "Old note"},
        timeout=30,
    )
    assert made.status_code == 201, made.text
    link = made.json()

    owner.get_by_role("button", name="Request files").focus()
    owner.keyboard.press("Enter")
    dialog = owner.get_by_test_id("requests-dialog")
    item = dialog.get_by_test_id("request-item")
    expect(item.get_by_test_id("request-received")).to_contain_text("0 of 2 files · 0 bytes of 3 MB")
    tab_to(owner, testid="change-request")
    owner.keyboard.press("Enter")
    expect(dialog.get_by_test_id("request-change-expiry")).to_be_focused()
    expect(dialog.get_by_test_id("request-change-size")).to_have_value(
        str(3 * 1024**2)
    )  # kept though unlisted
    owner.keyboard.press("Tab")
    expect(dialog.get_by_test_id("request-change-files")).to_be_focused()
    owner.keyboard.press("Control+A")
    owner.keyboard.type("0")
    owner.keyboard.press("Enter")
    expect(dialog.get_by_role("alert")).to_contain_text("Most files must be a whole number")
    expect(dialog.get_by_test_id("request-change-files")).to_be_focused()
    owner.keyboard.press("Control+A")
    owner.keyboard.type("5")
    tab_to(owner, testid="request-change-password")
    owner.keyboard.type(PASSWORD)
    tab_to(owner, testid="request-change-note")
    owner.keyboard.press("Control+A")
    owner.keyboard.type("Send the meter photo too.")
    assert_accessible(axe, owner, "a request link's Change panel")
    tab_to(owner, testid="save-request-changes")
    owner.keyboard.press("Enter")

    expect(item.get_by_test_id("request-received")).to_contain_text("0 of 5 files")
    expect(item.get_by_test_id("request-received")).to_contain_text("Password")
    expect(item.get_by_test_id("request-item-note")).to_have_text("Send the meter photo too.")
    expect(item.get_by_test_id("change-request")).to_be_focused()
    expect(owner.get_by_test_id("announcer")).to_have_text("Request link changed")
    session.screenshot(owner, "request-link-changed", full_page=False)

    guest = session.new_page()
    guest.goto(link["url"])
    expect(guest.get_by_test_id("request-unlock-password")).to_be_focused()  # the new password is asked
    guest.keyboard.type(PASSWORD)
    guest.keyboard.press("Enter")
    expect(guest.get_by_test_id("request-note")).to_contain_text("Send the meter photo too.")
    expect(guest.get_by_test_id("request-limits")).to_contain_text("You can send 5 more files")
