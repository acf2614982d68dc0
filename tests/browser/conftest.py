"""Browser test fixtures: one `filepipe local` and one Debian Chromium for the run, a helper per test."""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    Request,
    Response,
    expect,
    sync_playwright,
)
from playwright.sync_api import Error as PlaywrightError

from tests.local.conftest import DEMO_EMAIL_ARGS, LocalProcess

ROOT = Path(__file__).resolve().parents[2]
BROWSER_DIR = Path(__file__).resolve().parent
ARTIFACTS = ROOT / "artifacts" / "browser"
STARTED_AT = time.time()  # when this process began the run
AXE_SCRIPT = BROWSER_DIR / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ACTION_TIMEOUT_MS = 15_000
NAVIGATION_TIMEOUT_MS = 20_000
STOP_TIMEOUT_SECONDS = 10.0
BANNER_TIMEOUT_SECONDS = 5.0

_DEMO_LOGIN = re.compile(r"^\s*demo login:\s+(?P<email>\S+)\s+/\s+(?P<password>\S+)\s*$")
_FAILED_LOAD = "Failed to load resource"
_REVOKE_TOKEN = "AWSCognitoIdentityProviderService.RevokeToken"
_SHARE_PATH = re.compile(r"^/(shares|requests)/[^/]+$")
_UNLOCK_PATH = re.compile(r"^/(shares|requests)/[^/]+/unlock$")
_CORS_BLOCKED = re.compile(
    r"^Access to fetch at '(?P<url>[^']+)' from origin '[^']+' has been blocked by CORS policy"
)


@dataclass(frozen=True)
class Site:
    """The running product as a person meets it: the web address and the demo login it printed."""

    web_url: str
    api_url: str
    aws_endpoint: str
    email: str
    password: str


def demo_login(runtime: LocalProcess) -> tuple[str, str]:
    """The demo user's email and password from the banner (its lines arrive just after the ready line)."""
    deadline = time.monotonic() + BANNER_TIMEOUT_SECONDS
    while True:
        for line in list(runtime.lines):
            match = _DEMO_LOGIN.match(line)
            if match:
                return match.group("email"), match.group("password")
        if time.monotonic() >= deadline:
            raise AssertionError("filepipe local printed no demo login:\n" + runtime.output())
        time.sleep(0.05)


# Package scope: started once for all browser tests, and stopped right after the last of them, so the
# rest of the suite does not share the machine with it.
@pytest.fixture(scope="package")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalProcess]:
    """`filepipe local` on free ports, stopped like Ctrl-C does (killed if that hangs) whatever happens."""
    running = LocalProcess(tmp_path_factory.mktemp("filepipe-browser"), DEMO_EMAIL_ARGS)
    try:
        yield running
    finally:
        if running.process.poll() is None and running.interrupt(timeout=STOP_TIMEOUT_SECONDS) is None:
            running.kill()
        running.reader.join(timeout=STOP_TIMEOUT_SECONDS)
        if running.process.stdout is not None:
            running.process.stdout.close()


@pytest.fixture(scope="package")
def site(runtime: LocalProcess) -> Site:
    email, password = demo_login(runtime)
    return Site(runtime.web_url, runtime.api_url, runtime.aws_endpoint, email, password)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """artifacts/browser/, emptied of the previous run's screenshots.

    Each xdist worker runs this, so it leaves what other workers of this run wrote (all start together,
    long before a first screenshot) and a file another worker removed first.
    """
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        try:
            if old.stat().st_mtime < STARTED_AT:
                old.unlink()
        except FileNotFoundError:
            pass
    return ARTIFACTS


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE_SCRIPT.is_file():
        pytest.fail(
            f"axe-core is missing ({AXE_SCRIPT}): run `cd tests/browser && npm ci` (`make install` does)",
            pytrace=False,
        )
    return AXE_SCRIPT.read_text()


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def chromium(playwright: Playwright) -> Iterator[Browser]:
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"Debian's Chromium is not installed at {CHROMIUM}: the browser tests drive it through "
            "Playwright. Install it with `make system-packages` (apt-get install chromium); "
            "`make test` does this first.",
            pytrace=False,
        )
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=NAVIGATION_TIMEOUT_MS
    )
    yield browser
    browser.close()


def _revokes_token(request: Request) -> bool:
    return request.method == "POST" and request.headers.get("x-amz-target") == _REVOKE_TOKEN


@dataclass
class ConsoleRecord:
    """What the pages said in their consoles, and which failed requests were expected ones."""

    logged: list[tuple[str, str]] = field(default_factory=list)
    expected_failures: list[str] = field(default_factory=list)
    expected_blocked: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)

    def on_response(self, response: Response) -> None:
        if response.status < 400:
            return
        request = response.request
        path = re.sub(r"^https?://[^/]+", "", response.url).split("?", 1)[0]
        unknown_share = request.method == "GET" and response.status == 404 and _SHARE_PATH.match(path)
        # A wrong share or request link password answers like an unknown link (404), too many of them 429.
        refused_password = (
            request.method == "POST" and response.status in (404, 429) and _UNLOCK_PATH.match(path)
        )
        if _revokes_token(request) or unknown_share or refused_password:
            self.expected_failures.append(response.url)

    def on_request_failed(self, request: Request) -> None:
        # moto's error for the missing action carries no CORS headers, so Chromium reports a blocked fetch.
        if _revokes_token(request):
            self.expected_failures.append(request.url)
            self.expected_blocked.append(request.url)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.logged.append((message.text, str(message.location.get("url", ""))))

    def on_page_error(self, error: PlaywrightError) -> None:
        self.exceptions.append(f"uncaught exception: {error}")

    def unexpected(self) -> list[str]:
        """Every error but Chromium's note of a known failed answer (moto has no RevokeToken; a link that
        does not work, or a wrong password, answers 404), each allowed once for each such answer."""
        allowed = list(self.expected_failures)
        blocked = list(self.expected_blocked)
        found = list(self.exceptions)
        for text, url in self.logged:
            cors = _CORS_BLOCKED.match(text)
            if text.startswith(_FAILED_LOAD) and url in allowed:
                allowed.remove(url)
            elif cors and cors.group("url") in blocked:
                blocked.remove(cors.group("url"))
            else:
                found.append(f"console error: {text} (at {url or 'unknown'})")
        return found


class BrowserSession:
    """A test's browser contexts: timeouts, console watching and screenshots under artifacts/browser/."""

    def __init__(self, browser: Browser, site: Site, artifacts: Path, test_name: str) -> None:
        self.browser = browser
        self.site = site
        self.artifacts = artifacts
        self.test_name = re.sub(r"[^A-Za-z0-9_.-]+", "-", test_name)
        self.console = ConsoleRecord()
        self.contexts: list[BrowserContext] = []
        self.screenshots: list[Path] = []

    def new_page(self, **context_options: Any) -> Page:
        """A page in a fresh context: no session, no cookies, as another person or a new tab would be."""
        context = self.browser.new_context(
            accept_downloads=True, viewport={"width": 1280, "height": 900}, **context_options
        )
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
        context.on("console", self.console.on_console)
        context.on("weberror", lambda web_error: self.console.on_page_error(web_error.error))
        context.on("response", self.console.on_response)
        context.on("requestfailed", self.console.on_request_failed)
        self.contexts.append(context)
        return context.new_page()

    def screenshot(self, page: Page, label: str, full_page: bool = True) -> Path:
        """Save artifacts/browser/{test}-{label}.png (a modal's fixed backdrop wants the viewport only)."""
        path = self.artifacts / f"{self.test_name}-{label}.png"
        page.screenshot(path=str(path), full_page=full_page)
        self.screenshots.append(path)
        return path

    def sign_in(self, page: Page) -> None:
        page.goto(self.site.web_url)
        page.get_by_label("Email").fill(self.site.email)
        page.get_by_label("Password", exact=True).fill(self.site.password)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Your files")).to_be_visible(timeout=NAVIGATION_TIMEOUT_MS)
        expect(page.get_by_test_id("sign-out")).to_be_visible()

    def close(self, failed: bool) -> None:
        for index, context in enumerate(self.contexts):
            for number, page in enumerate(context.pages):
                if failed and not page.is_closed():
                    path = self.artifacts / f"{self.test_name}-failed-{index}-{number}.png"
                    with contextlib.suppress(PlaywrightError):
                        page.screenshot(path=str(path), full_page=True, timeout=5_000)
            context.close()


_CALL_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report


@pytest.fixture
def session(
    chromium: Browser, site: Site, artifacts: Path, request: pytest.FixtureRequest
) -> Iterator[BrowserSession]:
    """Per test: contexts closed afterwards (screenshots if it failed); unexpected console errors fail it."""
    browser_session = BrowserSession(chromium, site, artifacts, request.node.name)
    yield browser_session
    failed = request.node.stash.get(_CALL_FAILED, True)
    browser_session.close(failed)
    if not failed:
        unexpected = browser_session.console.unexpected()
        assert not unexpected, "\n".join(unexpected)
        assert browser_session.screenshots, "every browser test saves at least one screenshot"


AxeViolations = list[dict[str, Any]]


@pytest.fixture
def axe(axe_source: str) -> Callable[[Page], AxeViolations]:
    """Run axe-core in a page (evaluated over the DevTools protocol, so the page's CSP stays on)."""

    def run(page: Page) -> AxeViolations:
        if not page.evaluate("() => typeof window.axe === 'object'"):
            page.evaluate(axe_source)
        violations: AxeViolations = page.evaluate(
            """async () => {
                const result = await window.axe.run(document, { resultTypes: ["violations"] });
                return result.violations.map((v) => ({
                    id: v.id,
                    impact: v.impact,
                    help: v.help,
                    nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ")),
                }));
            }"""
        )
        return violations

    return run
