"""Fixtures for end-to-end tests: `filepipe local` as a subprocess on free ports."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from filepipe.local.client import BrowserClient
from filepipe.runtime_state import DEMO_EMAIL

READY_TIMEOUT_SECONDS = 90.0
# The demo's email as `make local` sets it up: a sender, and the operator's SES step for it and (the SES
# sandbox asks for it) the demo user's address. The runtime verifies nothing on its own, as AWS does not.
DEMO_SENDER = "filepipe@example.com"
DEMO_EMAIL_ARGS = [
    *("--parameter", f"SenderEmail={DEMO_SENDER}"),
    *("--verify-email", DEMO_SENDER, "--verify-email", DEMO_EMAIL),
]
_READY = re.compile(r"^filepipe local is ready \((?P<seconds>[\d.]+) s\)")


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            probe.bind(("127.0.0.1", 0))
            sockets.append(probe)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for probe in sockets:
            probe.close()


def descendants(pid: int) -> set[int]:
    """Every living process below ``pid`` (from /proc), however deep."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: set[int] = set()
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            if child not in found:
                found.add(child)
                pending.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0


# How long an outcome's usage change may trail the outcome: the record step writes one, then the other.
USAGE_SETTLES_SECONDS = 10.0


def settled_usage(client: BrowserClient, stored_bytes: int) -> dict[str, Any]:
    """GET /me/usage once it counts ``stored_bytes`` as stored (bounded): the file's record says READY a
    moment before its bytes move from held to stored."""
    deadline = time.monotonic() + USAGE_SETTLES_SECONDS
    while True:
        usage: dict[str, Any] = client.call("GET", "/me/usage")
        if usage["storedBytes"] == stored_bytes or time.monotonic() > deadline:
            return usage
        time.sleep(0.1)


class LocalProcess:
    """A running `filepipe local`: its URLs, output so far, and how to stop it like Ctrl-C does."""

    def __init__(self, state_dir: Path, extra_args: list[str] | None = None) -> None:
        self.web_port, self.api_port, self.aws_port = free_ports(3)
        self.web_url = f"http://127.0.0.1:{self.web_port}"
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.aws_endpoint = f"http://127.0.0.1:{self.aws_port}"
        self.state_dir = state_dir
        self.lines: list[str] = []
        self._ready = threading.Event()
        self.startup_seconds: float | None = None
        self.wall_startup_seconds: float | None = None
        began = time.monotonic()
        script = Path(sys.executable).with_name("filepipe")
        command = [str(script)] if script.exists() else [sys.executable, "-m", "filepipe.cli"]
        self.process = subprocess.Popen(
            [
                *command,
                "local",
                "--port",
                str(self.web_port),
                "--api-port",
                str(self.api_port),
                "--aws-port",
                str(self.aws_port),
                "--state-dir",
                str(state_dir),
                *(extra_args or []),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        # The reader also wakes the wait when the process ends before its ready line: that is a failure too.
        if not self._ready.wait(READY_TIMEOUT_SECONDS) or self.startup_seconds is None:
            self.kill()
            pytest.fail("filepipe local did not become ready:\n" + self.output())
        self.wall_startup_seconds = time.monotonic() - began

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            match = _READY.match(line)
            if match:
                self.startup_seconds = float(match.group("seconds"))
                self._ready.set()
        self._ready.set()  # the process ended; the waiter reports its output

    def output(self) -> str:
        return "\n".join(self.lines[-200:])

    def status(self) -> dict[str, object]:
        response = requests.get(f"{self.aws_endpoint}/_filepipe/status", timeout=10)
        response.raise_for_status()
        result: dict[str, object] = response.json()
        return result

    def interrupt(self, timeout: float) -> int | None:
        """Send SIGINT (what Ctrl-C sends) and wait; the exit code, or None if it did not stop in time."""
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        """Ctrl-C, as an operator stops it; killed with its children if it does not end in time."""
        if self.process.poll() is None and self.interrupt(timeout=10) is None:
            self.kill()
        self.reader.join(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def kill(self) -> None:
        for pid in descendants(self.process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalProcess]:
    running = LocalProcess(tmp_path_factory.mktemp("filepipe-local"), DEMO_EMAIL_ARGS)
    yield running
    running.stop()
