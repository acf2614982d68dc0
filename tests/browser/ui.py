"""What the browser tests do on the web UI: files to upload, a file's row, its thumbnail, keyboard focus."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PIL import Image
from playwright.sync_api import FilePayload, Locator, Page, expect

from tests.browser.conftest import AxeViolations

READY_TIMEOUT_MS = 20_000
IMAGE_LOAD_TIMEOUT_MS = 10_000
# Each Tab moves one control; a page with a few dozen files' buttons stays far below this.
MAX_TAB_PRESSES = 80
BLOCKING_IMPACTS = {"serious", "critical"}
SETTLED = "() => !document.getAnimations().some((animation) => animation instanceof CSSTransition)"
Axe = Callable[[Page], AxeViolations]


@dataclass(frozen=True)
class Upload:
    name: str
    content_type: str
    data: bytes

    def payload(self) -> FilePayload:
        return {"name": self.name, "mimeType": self.content_type, "buffer": self.data}


def choose_files(page: Page, *uploads: Upload) -> None:
    """What the OS file dialog hands the page after the person picks these files."""
    page.get_by_label("Choose files").set_input_files([upload.payload() for upload in uploads])


def id_token(page: Page) -> str:
    """The signed-in owner's ID token, as the web app holds it: for API calls a test makes as them."""
    return str(page.evaluate("() => JSON.parse(sessionStorage.getItem('filepipe.session')).idToken"))


def file_row(page: Page, name: str) -> Locator:
    return page.get_by_test_id("file-row").filter(
        has=page.locator(".file-name").get_by_text(name, exact=True)
    )


def expect_status(row: Locator, status: str, label: str, timeout: int = READY_TIMEOUT_MS) -> None:
    expect(row).to_have_attribute("data-status", status, timeout=timeout)
    expect(row.get_by_test_id("file-status")).to_have_text(label)


def loaded_image(page: Page, image: Locator) -> str:
    """Wait until ``image`` shows a decoded picture; its source URL."""
    expect(image).to_be_visible(timeout=IMAGE_LOAD_TIMEOUT_MS)
    image.scroll_into_view_if_needed()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0",
        arg=image.element_handle(),
        timeout=IMAGE_LOAD_TIMEOUT_MS,
    )
    source = image.get_attribute("src")
    assert source, "the image has no source"
    return source


def fetch_image(page: Page, url: str) -> Image.Image:
    """The picture at ``url`` as this page's browser context fetches it."""
    response = page.context.request.get(url, timeout=IMAGE_LOAD_TIMEOUT_MS)
    assert response.ok, f"GET {url}: HTTP {response.status}"
    picture = Image.open(io.BytesIO(response.body()))
    picture.load()
    return picture


def assert_left_red_right_blue(picture: Image.Image) -> None:
    """The test images are red on the left and blue on the right: a thumbnail must keep that."""
    rgb = picture.convert("RGB")
    width, height = rgb.size
    left = rgb.getpixel((width // 4, height // 2))
    right = rgb.getpixel((3 * width // 4, height // 2))
    assert isinstance(left, tuple)
    assert isinstance(right, tuple)
    assert left[0] > 150, f"left half is {left}, expected red"
    assert left[2] < 100, f"left half is {left}, expected red"
    assert right[2] > 150, f"right half is {right}, expected blue"
    assert right[0] < 100, f"right half is {right}, expected blue"


_FOCUSED = """() => {
    const el = document.activeElement;
    if (!el || el === document.body) return null;
    const labelled = el.labels && el.labels.length ? el.labels[0].textContent : "";
    return {
        tag: el.tagName.toLowerCase(),
        type: el.getAttribute("type") || "",
        testid: el.dataset.testid || "",
        name: (el.getAttribute("aria-label") || labelled || el.textContent || "")
            .replace(/\\s+/g, " ")
            .trim(),
        focusVisible: el.matches(":focus-visible"),
    };
}"""


def focused(page: Page) -> dict[str, Any] | None:
    """The element with keyboard focus: tag, type, data-testid, name and whether its focus is shown."""
    result: dict[str, Any] | None = page.evaluate(_FOCUSED)
    return result


def tab_to(page: Page, *, testid: str = "", name: str = "", backwards: bool = False) -> dict[str, Any]:
    """Press Tab (Shift+Tab backwards) until the focused element has this data-testid or name."""
    pattern = re.compile(rf"^{re.escape(name)}$") if name else None
    seen: list[str] = []
    for _ in range(MAX_TAB_PRESSES):
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
        now = focused(page)
        if now is None:
            seen.append("<body>")
            continue
        seen.append(now["testid"] or now["name"] or now["tag"])
        if (testid and now["testid"] == testid) or (pattern and pattern.match(now["name"])):
            return now
    raise AssertionError(f"Tab never reached {testid or name!r}; focus went through: {seen}")


def assert_accessible(axe: Axe, page: Page, where: str) -> None:
    """No serious or critical violation, checked in the light and the dark colour scheme."""
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        # Buttons fade to the new scheme's colours; measuring contrast mid-fade would measure neither.
        page.wait_for_function(SETTLED, timeout=5_000)
        blocking = [v for v in axe(page) if v["impact"] in BLOCKING_IMPACTS]
        details = "\n".join(f"  {v['impact']}: {v['id']} ({v['help']}) at {v['nodes']}" for v in blocking)
        assert not blocking, f"{where} ({scheme}) has accessibility violations:\n{details}"
    page.emulate_media(color_scheme="light")
