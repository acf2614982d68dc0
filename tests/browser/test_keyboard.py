"""The web UI by keyboard alone: sign in, upload, share, copy, revoke, sign out; Tab, Enter and Space."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests import images
from tests.browser.conftest import BrowserSession
from tests.browser.ui import Upload, expect_status, file_row, focused, loaded_image, tab_to

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

# Counts pointer input the page receives; a keyboard-only pass must end with none.
COUNT_POINTER_INPUT = """
window.__pointerInput = 0;
for (const type of ["pointerdown", "mousedown", "touchstart", "wheel"]) {
  window.addEventListener(type, (event) => { if (event.isTrusted) window.__pointerInput += 1; }, true);
}
"""
ONE_DAY_SECONDS = "86400"


def test_upload_and_share_with_the_keyboard_only(session: BrowserSession) -> None:
    page = session.new_page()
    page.context.add_init_script(COUNT_POINTER_INPUT)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=session.site.web_url)
    page.goto(session.site.web_url)

    expect(page.get_by_role("heading", name="Sign in to filepipe")).to_be_visible()
    assert (focused(page) or {}).get("type") == "email", "the sign-in card starts in the Email field"
    page.keyboard.type(session.site.email)
    assert tab_to(page, name="Password")["type"] == "password"
    page.keyboard.type(session.site.password)
    page.keyboard.press("Enter")
    heading = page.get_by_role("heading", name="Your files")
    expect(heading).to_be_focused(timeout=20_000)

    file_input = tab_to(page, testid="file-input")
    assert file_input["focusVisible"], "the focused file input must show where focus is"
    outline = page.get_by_text("Choose files", exact=True).evaluate(
        "label => getComputedStyle(label).outlineStyle"
    )
    assert outline == "solid", "the Choose files button shows a focus ring while its input has focus"
    note = Upload("keyboard-note.png", "image/png", images.png((400, 300)))
    # The OS file dialog is outside the page: hand the focused input its files as the dialog would.
    page.locator(":focus").set_input_files(note.payload())
    row = file_row(page, note.name)
    expect_status(row, "READY", "Ready")
    loaded_image(page, row.locator(".thumb img"))
    session.screenshot(page, "ready")

    tab_to(page, name=f"Share {note.name}")
    page.keyboard.press("Enter")
    dialog = page.get_by_test_id("share-dialog")
    expect(dialog).to_be_visible()
    expiry = dialog.get_by_test_id("share-expiry")
    expect(expiry).to_be_focused()
    page.keyboard.type("1")  # a closed select picks the option whose label starts with what is typed
    expect(expiry).to_have_value(ONE_DAY_SECONDS)
    assert tab_to(page, testid="share-limit")["tag"] == "input"
    page.keyboard.type("3")
    tab_to(page, name="Create link")
    page.keyboard.press("Space")
    share_url = dialog.get_by_test_id("share-url")
    expect(share_url).to_have_value(re.compile(rf"^{re.escape(session.site.web_url)}/s/[^/]+$"))
    link = share_url.input_value()
    copy = dialog.get_by_test_id("copy-link")
    expect(copy).to_be_focused()
    expect(dialog.get_by_test_id("share-item")).to_contain_text("0 of 3 downloads")
    page.keyboard.press("Enter")
    expect(copy).to_have_text("Copied")
    assert page.evaluate("() => navigator.clipboard.readText()") == link
    session.screenshot(page, "share-dialog", full_page=False)

    tab_to(page, testid="revoke-share")
    page.keyboard.press("Enter")
    confirm = page.get_by_test_id("confirm-dialog")
    expect(confirm).to_be_visible()
    expect(confirm.get_by_role("button", name="Cancel")).to_be_focused()
    tab_to(page, testid="confirm-button")
    page.keyboard.press("Space")
    expect(confirm).to_be_hidden()
    expect(dialog.get_by_test_id("revoke-share")).to_have_count(0)
    expect(dialog.get_by_role("button", name="Create link")).to_be_focused()

    stranger = session.new_page()
    stranger.goto(link)
    expect(stranger.get_by_test_id("share-gone")).to_be_visible()
    expect(stranger.get_by_role("heading", name="This link doesn't work")).to_be_focused()
    session.screenshot(stranger, "revoked-link")

    tab_to(page, name="Close")
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    expect(row.get_by_role("button", name=f"Share {note.name}")).to_be_focused()
    tab_to(page, testid="sign-out", backwards=True)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Sign in to filepipe")).to_be_visible()
    session.screenshot(page, "signed-out")
    assert page.evaluate("() => window.__pointerInput") == 0, "the pass used pointer input"
