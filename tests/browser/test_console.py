"""The operator console in Chromium: a clamd outage fails an upload into the DLQ; a replay brings it back."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, Route, ViewportSize, expect
from playwright.sync_api import Error as PlaywrightError

from filepipe.local.client import BrowserClient
from filepipe.runtime_state import DEMO_EMAIL, DEMO_PASSWORD
from tests import images
from tests.browser.ui import Axe, assert_accessible
from tests.local.conftest import LocalProcess
from tests.local.test_console_api import (
    ScannerOutage,
    console_address,
    start_stack_without_scanner,
    wait_for_status,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

LAPTOP: ViewportSize = {"width": 1366, "height": 768}
ACTION_TIMEOUT_MS = 15_000
RUN_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScannerOutage]:
    scanner = ScannerOutage(tmp_path_factory.mktemp("console-clamd"))
    yield scanner
    scanner.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, outage: ScannerOutage) -> Iterator[LocalProcess]:
    # ClamAV mode: the page shows the scan function's state failing and then passing.
    running = start_stack_without_scanner(tmp_path_factory.mktemp("console-browser"), outage, "ClamAV")
    yield running
    running.stop()


class PageErrors:
    """Console errors and uncaught exceptions of a page; ``allow`` names expected failed loads."""

    def __init__(self, page: Page, allow: tuple[str, ...] = ()) -> None:
        self.found: list[str] = []
        self.allow = allow
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.found.append(f"uncaught: {error}"))

    def _console(self, message: ConsoleMessage) -> None:
        location = str(message.location.get("url", ""))
        if message.type == "error" and not any(allowed in location for allowed in self.allow):
            self.found.append(f"{message.text} (at {location})")


def shoot(page: Page, artifacts: Path, label: str) -> None:
    page.screenshot(path=str(artifacts / f"console-{label}.png"), full_page=True)


def assert_states_do_not_overlap(page: Page) -> None:
    boxes = []
    for state in page.locator("[data-testid=graph-state]:not(.is-compound) .state-box").all():
        box = state.bounding_box()
        assert box is not None
        boxes.append(box)
    assert len(boxes) >= 10
    for index, a in enumerate(boxes):
        for b in boxes[index + 1 :]:
            apart = (
                a["x"] + a["width"] <= b["x"]
                or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"]
                or b["y"] + b["height"] <= a["y"]
            )
            assert apart, f"states overlap in the graph: {a} and {b}"


def state_node(page: Page, name: str) -> Locator:
    return page.get_by_test_id("workflow-graph").locator(f'[data-testid=graph-state][data-state="{name}"]')


def test_an_operator_sees_the_failed_upload_and_replays_it_to_ready(
    chromium: Browser, artifacts: Path, axe: Axe, stack: LocalProcess, outage: ScannerOutage
) -> None:
    user = BrowserClient(stack.web_url)
    user.sign_in(DEMO_EMAIL, DEMO_PASSWORD)
    file_id = user.upload("lighthouse.jpg", images.jpeg((480, 320)), "image/jpeg")
    assert user.wait_final(file_id, timeout=60)["status"] == "FAILED"
    url, _ = console_address(stack)

    context = chromium.new_context(viewport=LAPTOP)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    try:
        page = context.new_page()
        errors = PageErrors(page)
        page.goto(url)
        # The token moved out of the address bar into the tab's session storage.
        expect(page).to_have_url(f"{stack.web_url}/console")
        row = page.locator(f'[data-testid=execution-row][data-execution="{file_id}"]')
        expect(row).to_have_attribute("data-status", "FAILED")
        expect(row.get_by_test_id("status-badge")).to_have_text("Failed")

        page.get_by_label("Status").select_option("SUCCEEDED")
        expect(row).to_have_count(0)
        expect(page.get_by_text("No executions match")).to_be_visible()
        page.get_by_label("Status").select_option("FAILED")
        expect(row).to_be_visible()
        expect(page).to_have_url(re.compile(r"/console\?status=FAILED$"))

        row.get_by_test_id("execution-link").click()
        expect(page.get_by_role("heading", level=1)).to_have_text(file_id)
        expect(page.locator(".execution-head").get_by_test_id("status-badge")).to_have_text("Failed")
        outcomes = {
            "Mark processing": "ok",
            "Validate file": "ok",
            "Scan for malware": "caught",
            "Record failure": "ok",
            "Processing failed": "failed",
            "Is it clean?": "none",
            "Make thumbnails and metadata": "none",
            "Make thumbnails": "none",
            "Promote original": "none",
            "Notify owner": "none",
        }
        for name, outcome in outcomes.items():
            expect(state_node(page, name)).to_have_attribute("data-outcome", outcome)
        assert_states_do_not_overlap(page)

        # The first state that caught an error is shown first, with its error.
        panel = page.get_by_test_id("state-panel")
        expect(panel.get_by_role("heading", level=2)).to_have_text("Scan for malware")
        expect(panel.get_by_test_id("state-error")).to_contain_text("ScannerUnavailable")
        # A state is chosen with the keyboard as well as the mouse.
        validate = state_node(page, "Validate file")
        validate.focus()
        page.keyboard.press("Enter")
        expect(panel.get_by_role("heading", level=2)).to_have_text("Validate file")
        expect(validate).to_have_attribute("aria-pressed", "true")
        expect(panel.locator("pre").first).to_contain_text(file_id)
        state_node(page, "Scan for malware").click()
        expect(panel.get_by_role("heading", level=2)).to_have_text("Scan for malware")
        shoot(page, artifacts, "failed-run")
        assert_accessible(axe, page, "the failed run")

        page.get_by_role("link", name=re.compile(r"^Dead letters")).click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Dead-letter queues")
        message = page.locator(f'[data-testid=dlq-message][data-file="{file_id}"]')
        expect(message).to_contain_text("ScannerUnavailable")
        expect(page.get_by_test_id("nav-count-dlq")).to_have_text("1")
        page.get_by_role("button", name="Dry run").click()
        summary = page.get_by_test_id("replay-summary")
        expect(summary).to_have_text("Dry run of 1 message: 1 would start again. Nothing was changed.")
        expect(message).to_be_visible()
        shoot(page, artifacts, "dlq")
        assert_accessible(axe, page, "the dead-letter queues")

        outage.restore()
        page.get_by_role("button", name="Replay all").click()
        expect(summary).to_have_text(
            "Replayed 1 message: 1 started again; 0 messages left in the queue.", timeout=RUN_TIMEOUT_MS
        )
        expect(message).to_have_count(0)
        expect(page.get_by_test_id("queue-failed")).to_contain_text("No messages.")
        expect(page.get_by_test_id("dlq-count")).to_have_text("0")
        expect(page.get_by_test_id("nav-count-dlq")).to_be_hidden()
        assert wait_for_status(user, file_id, "READY")["status"] == "READY"

        page.get_by_test_id("replay-result").get_by_role("link", name=f"{file_id}-replay-1").click()
        head_badge = page.locator(".execution-head").get_by_test_id("status-badge")
        expect(head_badge).to_have_text("Succeeded", timeout=RUN_TIMEOUT_MS)
        for name in ("Scan for malware", "Make thumbnails and metadata", "Record ready", "Notify owner"):
            expect(state_node(page, name)).to_have_attribute("data-outcome", "ok")
        expect(state_node(page, "Processing failed")).to_have_attribute("data-outcome", "none")
        runs = page.get_by_role("navigation", name="Runs of this file")
        expect(runs.get_by_role("link")).to_have_count(2)
        shoot(page, artifacts, "replayed-run")

        page.get_by_role("link", name=f"{file_id}", exact=True).first.click()
        expect(page.locator("[data-testid=execution-row]")).to_have_count(2)
        expect(page.locator("[data-testid=execution-row][data-status=SUCCEEDED]")).to_have_count(1)

        page.get_by_role("link", name=re.compile(r"^Outbox")).click()
        expect(page.get_by_test_id("outbox-mail").filter(has_text=DEMO_EMAIL).first).to_be_visible()
        shoot(page, artifacts, "outbox")
        assert not errors.found, "\n".join(errors.found)
    except (AssertionError, PlaywrightError):
        for number, open_page in enumerate(context.pages):
            open_page.screenshot(path=str(artifacts / f"console-failed-{number}.png"), full_page=True)
        raise
    finally:
        context.close()


def test_the_console_asks_for_its_token_and_refuses_a_wrong_one(
    chromium: Browser, artifacts: Path, stack: LocalProcess
) -> None:
    _, token = console_address(stack)
    context = chromium.new_context(viewport=LAPTOP)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    try:
        page = context.new_page()
        # The wrong token's 401 is expected; nothing else may fail.
        errors = PageErrors(page, allow=("/console/api/",))
        page.goto(f"{stack.web_url}/console/dlq")
        expect(page.get_by_role("heading", level=1)).to_have_text("Operator console")
        field = page.get_by_label("Operator token")
        expect(field).to_be_focused()
        field.fill("not-the-token-at-all")
        page.get_by_role("button", name="Open the console").click()
        expect(page.get_by_role("alert")).to_contain_text("did not accept")
        shoot(page, artifacts, "token")
        page.get_by_label("Operator token").fill(token)
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", level=1)).to_have_text("Dead-letter queues")
        expect(page.get_by_role("link", name=re.compile(r"^Dead letters"))).to_have_attribute(
            "aria-current", "page"
        )
        assert not errors.found, "\n".join(errors.found)
    finally:
        context.close()


# Each settled console API answer, recorded once the page's own handling of it has run (a task after it).
SETTLED_ANSWERS = """
const json = Response.prototype.json;
window.settledAnswers = [];
Response.prototype.json = function () {
  const answer = { url: this.url, status: this.status };
  return json.call(this).finally(() => setTimeout(() => window.settledAnswers.push(answer), 0));
};
"""


def test_a_late_refusal_of_the_wrong_token_leaves_the_right_one_signed_in(
    chromium: Browser, stack: LocalProcess
) -> None:
    """A request sent with the wrong token can be answered after the operator has entered the right one (a
    slow machine answers in any order): its 401 is about a token no longer in use."""
    _, token = console_address(stack)
    wrong = "not-the-token-at-all"
    held: list[Route] = []

    def hold_the_wrong_tokens_outbox(route: Route) -> None:
        if route.request.headers.get("authorization") == f"Bearer {wrong}" and not held:
            held.append(route)
        else:
            route.continue_()

    context = chromium.new_context(viewport=LAPTOP)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    try:
        page = context.new_page()
        page.add_init_script(SETTLED_ANSWERS)
        page.route("**/console/api/outbox", hold_the_wrong_tokens_outbox)
        page.goto(f"{stack.web_url}/console/dlq")
        page.get_by_label("Operator token").fill(wrong)
        page.get_by_role("button", name="Open the console").click()
        expect(page.get_by_role("alert")).to_contain_text("did not accept")
        assert len(held) == 1, "the wrong token's outbox request was not sent"
        page.get_by_label("Operator token").fill(token)
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", level=1)).to_have_text("Dead-letter queues")

        held[0].continue_()
        page.wait_for_function(
            "() => window.settledAnswers.some(a => a.status === 401 && a.url.endsWith('/console/api/outbox'))"
        )
        expect(page.get_by_role("heading", level=1)).to_have_text("Dead-letter queues")
        expect(page.get_by_role("link", name=re.compile(r"^Dead letters"))).to_have_attribute(
            "aria-current", "page"
        )
        assert page.evaluate("() => sessionStorage.getItem('filepipe.console.token')") == token
    finally:
        context.close()


LOOPING_MACHINE = {
    "StartAt": "Poll",
    "States": {
        "Poll": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Next": "Done?"},
        "Done?": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.done", "BooleanEquals": True, "Next": "Each item"},
                {"And": [{"Variable": "$.tries", "NumericGreaterThan": 5}], "Next": "Give up"},
            ],
            "Default": "Wait a bit",
        },
        "Wait a bit": {"Type": "Wait", "Seconds": 5, "Next": "Poll"},
        "Each item": {
            "Type": "Map",
            "ItemProcessor": {"StartAt": "Handle", "States": {"Handle": {"Type": "Pass", "End": True}}},
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Give up"}],
            "Next": "Finished",
        },
        "Finished": {"Type": "Succeed"},
        "Give up": {"Type": "Fail"},
    },
}

LAYOUT_CHECK = """async (definition) => {
    const { layoutDefinition } = await import("/js/console/graph.js");
    const layout = layoutDefinition(definition, (text) => text.length * 7);
    const overlaps = [];
    const boxes = layout.nodes.filter((node) => !node.lanes);
    for (const a of boxes) for (const b of boxes) {
        if (a.id < b.id && a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h) {
            overlaps.push([a.id, b.id]);
        }
    }
    const outside = layout.nodes.filter(
        (n) => n.x < 0 || n.y < 0 || n.x + n.w > layout.width || n.y + n.h > layout.height,
    );
    return {
        nodes: layout.nodes.map((node) => [node.id, node.parent]),
        edges: layout.edges.map((edge) => [edge.from, edge.to, edge.kind, edge.label]),
        finite: layout.edges.every(
            (edge) => edge.points.every((p) => Number.isFinite(p.x) && Number.isFinite(p.y)),
        ),
        overlaps,
        outside: outside.map((node) => node.id),
    };
}"""


def test_the_graph_lays_out_loops_maps_and_terminal_states(chromium: Browser, stack: LocalProcess) -> None:
    page = chromium.new_page()
    try:
        page.goto(f"{stack.web_url}/console")
        result = page.evaluate(LAYOUT_CHECK, LOOPING_MACHINE)
    finally:
        page.close()
    nodes = {name: parent for name, parent in result["nodes"]}
    assert set(nodes) == {*LOOPING_MACHINE["States"], "Handle", "__start__", "__end__"}
    assert nodes["Handle"] == "Each item"
    edges = {(source, target): (kind, label) for source, target, kind, label in result["edges"]}
    assert edges[("Wait a bit", "Poll")] == ("next", "")  # the loop back is drawn
    assert edges[("Done?", "Each item")] == ("choice", "done = true")
    assert edges[("Done?", "Give up")] == ("choice", "and(…)")
    assert edges[("Done?", "Wait a bit")] == ("default", "otherwise")
    assert edges[("Each item", "Give up")] == ("catch", "any error")
    assert edges[("Finished", "__end__")][0] == "end"
    assert result["finite"]
    assert result["overlaps"] == []
    assert result["outside"] == []
