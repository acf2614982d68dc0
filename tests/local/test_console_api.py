"""The operator console's API: guarded by the printed token, and the clamd-outage -> DLQ -> replay flow in
both scanner modes (ClamAV's scan function, and GuardDuty, which scans with the runtime's clamd)."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from moto import mock_aws
from werkzeug.test import Client

from filepipe.clamd import LocalClamd
from filepipe.local.client import BrowserClient
from filepipe.local.console import ConsoleApi, PeekedMessage, describe_message, peek_queue, with_console
from filepipe.local.services.cloudfront.web import SiteApp
from filepipe.ops.target import FAILED_QUEUE, START_QUEUE, Target
from filepipe.runtime_state import DEMO_EMAIL, DEMO_PASSWORD, STATE_FILE
from tests import images
from tests.local.conftest import DEMO_EMAIL_ARGS, LocalProcess

EVENTS = Path(__file__).resolve().parents[2] / "events"
TOKEN = "t" * 32
CLAMD_START_SECONDS = 20.0
READY_SECONDS = 60.0
_CONSOLE_LINE = re.compile(r"^\s*console:\s+(?P<url>http://\S+/console#token=(?P<token>\S+))")


# ------------------------------------------------------------------ helpers (the browser test uses them too)
class ScannerOutage:
    """A clamd that is down until :meth:`restore`: the stack is pointed at its address while nothing
    listens there, and :meth:`restore` starts clamd again on that same address and database."""

    def __init__(self, work_dir: Path) -> None:
        if not LocalClamd.is_available():
            pytest.fail("clamd is not installed: run `make system-packages` (Debian package clamav-daemon)")
        self._clamd = LocalClamd(work_dir).start()
        self.address = self._clamd.address
        self.port = int(self.address.rsplit(":", 1)[1])
        self._clamd.stop()
        self._process: subprocess.Popen[bytes] | None = None

    def restore(self) -> None:
        assert self._clamd.binary is not None
        self._process = subprocess.Popen(
            [self._clamd.binary, "--config-file", str(self._clamd.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "TZ": "UTC"},
        )
        deadline = time.monotonic() + CLAMD_START_SECONDS
        while not self._answers_ping():
            assert self._process.poll() is None, "clamd exited instead of starting again"
            assert time.monotonic() < deadline, f"clamd did not answer on {self.address} again"
            time.sleep(0.02)

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as connection:
                connection.sendall(b"zPING\0")
                return connection.recv(16).rstrip(b"\0") == b"PONG"
        except OSError:
            return False

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)


def start_stack_without_scanner(state_dir: Path, outage: ScannerOutage, scanner: str) -> LocalProcess:
    """`filepipe local` in the Scanner mode ``scanner`` whose scans find no clamd until the outage ends."""
    if scanner == "ClamAV":
        # The runtime's own clamd stays off: the stack's ClamdAddress parameter points at the outage.
        where = ["--no-clamd", "--parameter", f"ClamdAddress={outage.address}"]
    else:
        # GuardDuty is the runtime's: it scans with the clamd it is told of instead of starting its own.
        where = ["--clamd-address", outage.address]
    return LocalProcess(state_dir, ["--parameter", f"Scanner={scanner}", *where, *DEMO_EMAIL_ARGS])


def console_address(running: LocalProcess) -> tuple[str, str]:
    """The console URL and token `filepipe local` printed (the banner follows the ready line)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for line in list(running.lines):
            match = _CONSOLE_LINE.match(line)
            if match:
                return match.group("url"), match.group("token")
        time.sleep(0.05)
    raise AssertionError("filepipe local printed no console address:\n" + running.output())


def wait_for_status(
    client: BrowserClient, file_id: str, status: str, timeout: float = READY_SECONDS
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        record: dict[str, Any] = client.call("GET", f"/files/{file_id}")
        if record["status"] == status:
            return record
        assert time.monotonic() < deadline, f"file {file_id} is {record['status']}, not {status}"
        time.sleep(0.1)


class Console:
    """The console API as its page calls it."""

    def __init__(self, web_url: str, token: str) -> None:
        self.base = f"{web_url}/console/api"
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, **params: str) -> Any:
        response = self.http.get(f"{self.base}/{path}", params=params, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, body: dict[str, Any]) -> Any:
        response = self.http.post(f"{self.base}/{path}", json=body, timeout=60)
        assert response.status_code == 200, response.text
        return response.json()


def failed_queue(dead_letters: dict[str, Any]) -> dict[str, Any]:
    queue: dict[str, Any] = next(q for q in dead_letters["queues"] if q["queue"] == FAILED_QUEUE)
    return queue


def wait_for_dead_letter(console: Console, file_id: str, timeout: float = READY_SECONDS) -> None:
    """Until the failed run's message is in the DLQ. The record says FAILED from the run's last task on;
    the run ends in its Fail state after that, and its status-change event brings the message later still."""
    deadline = time.monotonic() + timeout
    while not any(m["fileId"] == file_id for m in failed_queue(console.get("dlq"))["messages"]):
        assert time.monotonic() < deadline, f"no dead letter for {file_id} after {timeout} s"
        time.sleep(0.1)


# ------------------------------------------------------------------ the API in process
def _site(tmp_path: Path) -> SiteApp:
    root = tmp_path / "site"
    root.mkdir()
    (root / "index.html").write_text("<html>app</html>")
    (root / "console.html").write_text("<html>console</html>")
    (root / "console.css").write_text("body {}")
    return SiteApp(root, {"apiUrl": "http://127.0.0.1:1"})


def _unreachable(service: str) -> Any:
    raise AssertionError(f"this request must not reach {service}")


def _client(tmp_path: Path, outbox: list[dict[str, Any]] | None = None) -> Client:
    target = Target("test", _unreachable, {"StateMachineArn": "arn:aws:states:us-east-1:1:stateMachine:x"})
    api = ConsoleApi(target, TOKEN, outbox=lambda: list(outbox or []), audit_stream=io.StringIO())
    app = with_console(_site(tmp_path), api)

    def from_this_machine(environ: dict[str, Any], start_response: Any) -> Any:
        # A real server always says who called; werkzeug's test environ leaves it out.
        return app({"REMOTE_ADDR": "127.0.0.1", **environ}, start_response)

    return Client(from_this_machine)


def test_the_console_page_is_served_for_its_routes_and_never_in_a_frame(tmp_path: Path) -> None:
    client = _client(tmp_path)
    for path in ("/console", "/console/", "/console/executions/01ABC", "/console/dlq", "/console/outbox"):
        response = client.get(path)
        assert (response.status_code, response.get_data()) == (200, b"<html>console</html>"), path
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert client.get("/console.css").get_data() == b"body {}"
    assert client.get("/files").get_data() == b"<html>app</html>"


def test_the_api_wants_the_token_from_this_machine(tmp_path: Path) -> None:
    client = _client(tmp_path, outbox=[{"id": "1"}, {"id": "2"}])
    missing = client.get("/console/api/outbox")
    assert missing.status_code == 401
    assert missing.json is not None
    assert missing.json["error"]["code"] == "Unauthorized"
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = client.get("/console/api/outbox", headers={"Authorization": "Bearer " + "x" * 32})
    assert wrong.status_code == 401
    remote = client.get(
        "/console/api/outbox",
        headers={"Authorization": f"Bearer {TOKEN}"},
        environ_overrides={"REMOTE_ADDR": "192.168.1.20"},
    )
    assert remote.status_code == 403
    allowed = client.get("/console/api/outbox", headers={"Authorization": f"Bearer {TOKEN}"})
    assert allowed.status_code == 200
    assert allowed.headers["Cache-Control"] == "no-store"
    assert allowed.json == {"items": [{"id": "2"}, {"id": "1"}], "total": 2}  # newest first


@pytest.mark.parametrize(
    ("method", "path", "body", "content_type", "status"),
    [
        ("GET", "/console/api/nothing", None, None, 404),
        ("DELETE", "/console/api/outbox", None, None, 405),
        ("POST", "/console/api/executions/01ABC", None, None, 405),
        ("GET", "/console/api/executions?status=SOMETIMES", None, None, 400),
        ("GET", "/console/api/executions?limit=0", None, None, 400),
        ("GET", "/console/api/executions?file=../etc", None, None, 400),
        ("GET", "/console/api/executions/a%20b", None, None, 400),
        ("POST", "/console/api/dlq/replay", "{}", "text/plain", 415),
        ("POST", "/console/api/dlq/replay", "[1]", "application/json", 400),
        ("POST", "/console/api/dlq/replay", '{"dryRun": "yes"}', "application/json", 400),
        ("POST", "/console/api/dlq/replay", '{"limit": 0}', "application/json", 400),
        ("POST", "/console/api/dlq/replay", '{"file": "a/b"}', "application/json", 400),
        ("POST", "/console/api/dlq/replay", '{"everything": true}', "application/json", 400),
        ("POST", "/console/api/dlq/replay", "x" * 20_000, "application/json", 413),
    ],
)
def test_bad_requests_are_refused_before_anything_is_called(
    tmp_path: Path, method: str, path: str, body: str | None, content_type: str | None, status: int
) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    if content_type:
        headers["Content-Type"] = content_type
    response = _client(tmp_path).open(path, method=method, data=body, headers=headers)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.json is not None
    assert set(response.json["error"]) == {"code", "message"}


def test_a_short_token_is_refused() -> None:
    with pytest.raises(ValueError, match="too short"):
        ConsoleApi(Target("t", _unreachable, {}), "short", outbox=list, audit_stream=io.StringIO())


def test_peeking_leaves_every_message_in_the_queue() -> None:
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="failed-executions")["QueueUrl"]
        for number in range(12):
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": number}))
        first, size = peek_queue(sqs, url, FAILED_QUEUE)
        again, _ = peek_queue(sqs, url, FAILED_QUEUE)
        assert size == 12
        # SQS answers at most ten per call and may answer the same ones again; none are hidden meanwhile.
        assert 10 <= len(first) <= 12
        assert [m.message_id for m in first] == [m.message_id for m in again]
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30)
        assert len(received["Messages"]) == 10


def test_dead_letters_are_described_by_file_run_and_error() -> None:
    arn = "arn:aws:states:us-east-1:123456789012:execution:sm:01JD7W3Q9X4M2K8N6P0R5T1V3Z-replay-1"
    state_input = json.loads((EVENTS / "state_input.json").read_text())
    failed = {
        "executionArn": arn,
        "status": "FAILED",
        "input": json.dumps({"file": state_input["file"]}),
        "error": "ScannerUnavailable",
        "cause": json.dumps(
            {"errorMessage": json.dumps({"code": "ScannerUnavailable", "message": "no clamd"})}
        ),
    }
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="dlq")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(failed))
        sqs.send_message(
            QueueUrl=url,
            MessageBody="not json",
            MessageAttributes={"ERROR_CODE": {"DataType": "String", "StringValue": "SQSError"}},
        )
        messages, _ = peek_queue(sqs, url, FAILED_QUEUE)
    described = {message.body: describe_message(message) for message in messages}
    good = described[json.dumps(failed)]
    assert good["fileId"] == state_input["file"]["fileId"]
    assert good["execution"] == "01JD7W3Q9X4M2K8N6P0R5T1V3Z-replay-1"
    assert good["error"] == "ScannerUnavailable: no clamd"
    assert good["replayable"] is True
    bad = described["not json"]
    assert bad["replayable"] is False
    assert "not JSON" in bad["problem"]
    assert bad["error"] == "SQSError"
    started = describe_message(
        PeekedMessage(
            queue=START_QUEUE,
            message_id="m",
            body=(EVENTS / "s3_object_created.json").read_text(),
            sent_at=None,
            receive_count=None,
            attributes={},
        )
    )
    assert started["fileId"]
    assert started["replayable"] is True
    assert started["execution"] is None


# ------------------------------------------------------------------ the whole flow against `filepipe local`
@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScannerOutage]:
    scanner = ScannerOutage(tmp_path_factory.mktemp("clamd-outage"))
    yield scanner
    scanner.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, outage: ScannerOutage) -> Iterator[LocalProcess]:
    running = start_stack_without_scanner(tmp_path_factory.mktemp("console-api"), outage, "ClamAV")
    yield running
    running.stop()


@pytest.mark.local
def test_the_runtime_prints_the_console_address_and_keeps_the_token_private(stack: LocalProcess) -> None:
    url, token = console_address(stack)
    assert url == f"{stack.web_url}/console#token={token}"
    state_file = stack.state_dir / STATE_FILE
    assert json.loads(state_file.read_text())["console"] == {"url": url, "token": token}
    assert state_file.stat().st_mode & 0o077 == 0
    assert requests.get(f"{stack.web_url}/console/api/executions", timeout=10).status_code == 401
    page = requests.get(f"{stack.web_url}/console/dlq", timeout=10)
    assert page.status_code == 200
    assert "/js/console/app.js" in page.text


@pytest.mark.local
def test_an_outage_fails_the_upload_into_the_dlq_and_a_replay_brings_it_to_ready(
    stack: LocalProcess, outage: ScannerOutage
) -> None:
    _, token = console_address(stack)
    console = Console(stack.web_url, token)
    user = BrowserClient(stack.web_url)
    user.sign_in(DEMO_EMAIL, DEMO_PASSWORD)
    file_id = user.upload("harbour.jpg", images.jpeg((320, 240)), "image/jpeg")
    assert user.wait_final(file_id, timeout=READY_SECONDS)["status"] == "FAILED"
    wait_for_dead_letter(console, file_id)

    listed = console.get("executions", status="FAILED", file=file_id)
    assert [(e["name"], e["fileId"], e["status"]) for e in listed["items"]] == [(file_id, file_id, "FAILED")]
    assert listed["items"][0]["durationSeconds"] > 0
    run = console.get(f"executions/{file_id}")
    states = {state["name"]: state for state in run["states"]}
    assert states["Scan for malware"]["status"] == "caught"
    assert states["Scan for malware"]["error"] == "ScannerUnavailable"
    assert states["Scan for malware"]["retries"] == 2
    assert "clamd" in states["Scan for malware"]["errorSummary"]
    assert states["Processing failed"]["status"] == "failed"
    assert "Promote original" not in states
    assert json.loads(states["Validate file"]["output"])["file"]["fileId"] == file_id
    definition = console.get("definition")["definition"]
    assert definition["StartAt"] == "Mark processing"
    assert set(states) <= set(definition["States"])

    # Peeking twice finds the same message: looking does not take it.
    for _ in range(2):
        dead = failed_queue(console.get("dlq"))
        assert [(m["fileId"], m["execution"]) for m in dead["messages"]] == [(file_id, file_id)]
        assert "ScannerUnavailable" in dead["messages"][0]["error"]

    dry = console.post("dlq/replay", {"dryRun": True})
    assert [(o["fileId"], o["action"], o["deleted"]) for o in dry["outcomes"]] == [(file_id, "start", False)]
    assert "dry run" in dry["report"]
    assert failed_queue(console.get("dlq"))["approximateCount"] == 1

    outage.restore()
    replay = console.post("dlq/replay", {"file": file_id})
    assert [(o["action"], o["execution"], o["deleted"]) for o in replay["outcomes"]] == [
        ("start", f"{file_id}-replay-1", True)
    ]
    assert any(
        entry["action"] == "start-execution" and entry["result"] == "accepted" for entry in replay["audit"]
    )
    record = wait_for_status(user, file_id, "READY")
    assert record["executionName"] == f"{file_id}-replay-1"
    assert console.get("dlq")["total"] == 0

    replayed = console.get(f"executions/{file_id}-replay-1")
    deadline = time.monotonic() + READY_SECONDS
    while replayed["status"] == "RUNNING" and time.monotonic() < deadline:  # the owner is still being told
        time.sleep(0.1)
        replayed = console.get(f"executions/{file_id}-replay-1")
    assert replayed["status"] == "SUCCEEDED"
    assert {s["name"]: s["status"] for s in replayed["states"]}["Record ready"] == "ok"
    assert [r["name"] for r in replayed["runs"]] == [f"{file_id}-replay-1", file_id]
    outbox = console.get("outbox")
    assert any(DEMO_EMAIL in mail["to"] for mail in outbox["items"])
    assert console.get("executions", file=file_id)["total"] == 2


# ------------------------------------------------------------------ the same outage in GuardDuty mode
@pytest.fixture(scope="module")
def guardduty_outage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScannerOutage]:
    scanner = ScannerOutage(tmp_path_factory.mktemp("guardduty-clamd-outage"))
    yield scanner
    scanner.stop()


@pytest.fixture(scope="module")
def guardduty_stack(
    tmp_path_factory: pytest.TempPathFactory, guardduty_outage: ScannerOutage
) -> Iterator[LocalProcess]:
    running = start_stack_without_scanner(
        tmp_path_factory.mktemp("console-api-guardduty"), guardduty_outage, "GuardDuty"
    )
    yield running
    running.stop()


@pytest.mark.local
def test_in_guardduty_mode_an_outage_fails_closed_and_replay_asks_for_a_new_scan_then_ready(
    guardduty_stack: LocalProcess, guardduty_outage: ScannerOutage, tmp_path: Path
) -> None:
    _, token = console_address(guardduty_stack)
    console = Console(guardduty_stack.web_url, token)
    user = BrowserClient(guardduty_stack.web_url)
    user.sign_in(DEMO_EMAIL, DEMO_PASSWORD)
    file_id = user.upload("harbour.jpg", images.jpeg((320, 240)), "image/jpeg")
    record = user.wait_final(file_id, timeout=READY_SECONDS)
    assert (record["status"], record["error"]["code"]) == ("FAILED", "ScannerUnavailable"), record
    wait_for_dead_letter(console, file_id)

    states = {state["name"]: state for state in console.get(f"executions/{file_id}")["states"]}
    awaited = states["Await GuardDuty verdict"]
    # GuardDuty's FAILED result is final for this run: nothing retries it, the run fails closed.
    assert (awaited["status"], awaited["error"], awaited["retries"]) == ("caught", "ScannerUnavailable", 0)
    # The scan verdict function's SendTaskFailure cause reached the run.
    assert "GuardDuty failed to scan the object (FAILED)" in awaited["errorSummary"]
    assert states["Processing failed"]["status"] == "failed"
    assert "Scan for malware" not in states
    dead = failed_queue(console.get("dlq"))
    assert [(m["fileId"], m["execution"]) for m in dead["messages"]] == [(file_id, file_id)]
    dry = console.post("dlq/replay", {"dryRun": True})
    assert [(o["fileId"], o["action"]) for o in dry["outcomes"]] == [(file_id, "start")]
    assert "would ask GuardDuty for a new scan" in dry["outcomes"][0]["detail"]

    guardduty_outage.restore()
    audit_log = tmp_path / "audit.jsonl"
    replay = subprocess.run(
        [
            str(Path(sys.executable).with_name("filepipe")),
            *("replay", "--file", file_id, "--wait", str(READY_SECONDS)),
            *("--state-dir", str(guardduty_stack.state_dir), "--audit-log", str(audit_log)),
        ],
        capture_output=True,
        text=True,
        timeout=2 * READY_SECONDS,
        check=False,
    )
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "asked GuardDuty for a new scan" in replay.stdout
    assert "SUCCEEDED" in replay.stdout
    audit = [
        (entry["action"], entry["result"]) for entry in map(json.loads, audit_log.read_text().splitlines())
    ]
    # The new scan is asked for before the new run waits for its verdict.
    assert audit.index(("request-scan", "accepted")) < audit.index(("start-execution", "accepted"))
    record = wait_for_status(user, file_id, "READY")
    assert record["executionName"] == f"{file_id}-replay-1"
    assert console.get("dlq")["total"] == 0
    replayed = {s["name"]: s["status"] for s in console.get(f"executions/{file_id}-replay-1")["states"]}
    assert replayed["Await GuardDuty verdict"] == "ok"
