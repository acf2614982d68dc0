"""`filepipe rescan` on `filepipe local`: infected READY files get quarantined; the console lists rescans."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from moto import mock_aws
from werkzeug.test import Client

from filepipe.clamd import LocalClamd, eicar_bytes
from filepipe.local.client import BrowserClient
from filepipe.local.console import ConsoleApi
from filepipe.ops.target import RESCAN_STATE_MACHINE_ARN, STATE_MACHINE_ARN, Target
from filepipe.runtime_state import DEMO_EMAIL, DEMO_PASSWORD, STATE_FILE
from tests.local.conftest import DEMO_EMAIL_ARGS, LocalProcess, settled_usage

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW_FILES = (
    ROOT / "statemachines" / "rescan_files.asl.json",
    ROOT / "functions" / "rescan" / "handler.py",
)
TOKEN = "r" * 32
READY_SECONDS = 60.0
RESCAN_SECONDS = 120.0
FILE_ID = "01JD7W3Q9X4M2K8N6P0R5T1V3Z"


# ------------------------------------------------------------------ the console's listing, in process
def _machine(sfn: Any, name: str, role: str) -> str:
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
    arn: str = sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=role)[
        "stateMachineArn"
    ]
    return arn


@pytest.fixture
def console(aws_env: None) -> Iterator[tuple[Client, Any, dict[str, str]]]:
    """The console API over moto with both workflows, one run of each (the rescan started last)."""
    with mock_aws():
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        role = boto3.client("iam", region_name="us-east-1").create_role(
            RoleName="workflows", AssumeRolePolicyDocument="{}"
        )["Role"]["Arn"]
        outputs = {
            STATE_MACHINE_ARN: _machine(sfn, "filepipe-ProcessUpload", role),
            RESCAN_STATE_MACHINE_ARN: _machine(sfn, "filepipe-RescanFiles", role),
        }
        sfn.start_execution(stateMachineArn=outputs[STATE_MACHINE_ARN], name=FILE_ID, input="{}")
        time.sleep(0.01)  # moto stamps start dates with the clock: the rescan is the newer run
        sfn.start_execution(
            stateMachineArn=outputs[RESCAN_STATE_MACHINE_ARN], name="rescan-x-0a1b", input="{}"
        )
        target = Target("test", lambda service: boto3.client(service, region_name="us-east-1"), outputs)
        api = ConsoleApi(target, TOKEN, outbox=list, audit_stream=io.StringIO())

        def from_this_machine(environ: dict[str, Any], start_response: Any) -> Any:
            return api({**environ, "REMOTE_ADDR": "127.0.0.1"}, start_response)

        yield Client(from_this_machine), sfn, outputs


def _get(client: Client, path: str) -> Any:
    response = client.get(f"/console/api/{path}", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.json


def test_the_console_lists_rescans_beside_uploads_labelled(
    console: tuple[Client, Any, dict[str, str]],
) -> None:
    client, _, _ = console
    listed = _get(client, "executions")
    assert [(e["name"], e["workflow"], e["fileId"]) for e in listed["items"]] == [
        ("rescan-x-0a1b", "RescanFiles", None),
        (FILE_ID, "ProcessUpload", FILE_ID),
    ]
    only_rescans = _get(client, "executions?workflow=RescanFiles")
    assert [e["name"] for e in only_rescans["items"]] == ["rescan-x-0a1b"]
    # One file's runs: a rescan is no run of a file.
    assert [e["name"] for e in _get(client, f"executions?file={FILE_ID}")["items"]] == [FILE_ID]
    refused = client.get(
        "/console/api/executions?workflow=Other", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert refused.status_code == 400


def test_a_rescan_opens_with_its_own_workflow(console: tuple[Client, Any, dict[str, str]]) -> None:
    client, _, outputs = console
    run = _get(client, "executions/rescan-x-0a1b")
    assert (run["workflow"], run["fileId"], run["runs"]) == ("RescanFiles", None, [])
    upload = _get(client, f"executions/{FILE_ID}")
    assert (upload["workflow"], upload["fileId"]) == ("ProcessUpload", FILE_ID)
    assert (
        _get(client, "definition?workflow=RescanFiles")["stateMachineArn"]
        == outputs[RESCAN_STATE_MACHINE_ARN]
    )
    assert _get(client, "definition")["stateMachineArn"] == outputs[STATE_MACHINE_ARN]
    missing = client.get("/console/api/executions/rescan-none", headers={"Authorization": f"Bearer {TOKEN}"})
    assert missing.status_code == 404


def test_a_stack_without_the_rescan_workflow_lists_uploads_only(aws_env: None) -> None:
    with mock_aws():
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        role = boto3.client("iam", region_name="us-east-1").create_role(
            RoleName="workflows", AssumeRolePolicyDocument="{}"
        )["Role"]["Arn"]
        machine = _machine(sfn, "filepipe-ProcessUpload", role)
        sfn.start_execution(stateMachineArn=machine, name=FILE_ID, input="{}")
        target = Target(
            "test",
            lambda service: boto3.client(service, region_name="us-east-1"),
            {STATE_MACHINE_ARN: machine},
        )
        api = ConsoleApi(target, TOKEN, outbox=list, audit_stream=io.StringIO())
        client = Client(lambda environ, start: api({**environ, "REMOTE_ADDR": "127.0.0.1"}, start))
        assert [e["workflow"] for e in _get(client, "executions")["items"]] == ["ProcessUpload"]
        missing = client.get(
            "/console/api/definition?workflow=RescanFiles", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert missing.status_code == 404


# ------------------------------------------------------------------ end to end
@dataclass
class Scanned:
    """A running stack and the clamd it scans with, whose definitions the test swaps."""

    stack: LocalProcess
    clamd: LocalClamd


@pytest.fixture(scope="module", params=["GuardDuty", "ClamAV"])
def scanned(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scanned]:
    """`filepipe local` in either scanner mode, scanning with a clamd whose definitions predate EICAR."""
    missing = [str(path.relative_to(ROOT)) for path in WORKFLOW_FILES if not path.exists()]
    if missing:
        pytest.fail(f"the RescanFiles workflow is not in the tree yet: {', '.join(missing)}")
    if not LocalClamd.is_available():
        pytest.fail("clamd is not installed: run `make system-packages` (Debian package clamav-daemon)")
    scanner = str(request.param)
    with LocalClamd(tmp_path_factory.mktemp(f"clamd-{scanner}"), detects_eicar=False) as clamd:
        # The local GuardDuty scans with this clamd, and so does the ClamAV mode's scan function.
        running = LocalProcess(
            tmp_path_factory.mktemp(f"rescan-{scanner}"),
            [
                *("--clamd-address", clamd.address),
                *("--parameter", f"Scanner={scanner}"),
                *DEMO_EMAIL_ARGS,
            ],
        )
        try:
            yield Scanned(running, clamd)
        finally:
            running.stop()


def _rescan(stack: LocalProcess, tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """`filepipe rescan` as an operator types it: the running runtime found through its state directory."""
    script = Path(sys.executable).with_name("filepipe")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "filepipe.cli"]
    return subprocess.run(
        [
            *command,
            "rescan",
            *argv,
            "--state-dir",
            str(stack.state_dir),
            "--audit-log",
            str(tmp_path / "audit.jsonl"),
            "--timeout",
            str(RESCAN_SECONDS),
        ],
        capture_output=True,
        text=True,
        timeout=RESCAN_SECONDS + 30,
        check=False,
    )


def _outbox(stack: LocalProcess) -> list[dict[str, Any]]:
    response = requests.get(f"{stack.aws_endpoint}/_filepipe/outbox", timeout=10)
    response.raise_for_status()
    messages: list[dict[str, Any]] = response.json()
    return messages


def _to_owner(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if DEMO_EMAIL in json.dumps(m.get("to"))]


@pytest.mark.local
@pytest.mark.clamd
def test_a_ready_file_found_infected_later_is_quarantined_and_its_share_stops(
    scanned: Scanned, tmp_path: Path
) -> None:
    stack, clamd = scanned.stack, scanned.clamd
    owner = BrowserClient(stack.web_url)
    owner.sign_in(DEMO_EMAIL, DEMO_PASSWORD)
    file_id = owner.upload("notes.txt", eicar_bytes(), "text/plain")
    assert owner.wait_final(file_id, timeout=READY_SECONDS)["status"] == "READY"  # definitions without EICAR
    assert settled_usage(owner, len(eicar_bytes()))["storedBytes"] == len(eicar_bytes())
    share = owner.call("POST", f"/files/{file_id}/shares", {"expiresInSeconds": 600}, expect=201)
    visitor = BrowserClient(stack.web_url)
    assert visitor.request("GET", f"/shares/{share['token']}", auth=False).status_code == 200
    clamd.refresh_definitions(detects_eicar=True)
    told_before = len(_to_owner(_outbox(stack)))

    dry = _rescan(stack, tmp_path, "--since", "1h", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "would be scanned; nothing was scanned or changed" in dry.stdout
    assert "Quarantined" not in dry.stdout
    assert owner.call("GET", f"/files/{file_id}")["status"] == "READY"
    assert visitor.request("GET", f"/shares/{share['token']}", auth=False).status_code == 200

    found = _rescan(stack, tmp_path, "--since", "1h")
    assert found.returncode == 0, found.stdout + found.stderr
    assert "Quarantined (1)" in found.stdout
    assert file_id in found.stdout
    assert "EICAR" in found.stdout
    assert "The whole window was covered." in found.stdout
    name = next(
        line.split()[1].rstrip(":") for line in found.stdout.splitlines() if line.startswith("Started ")
    )
    assert f"/console/executions/{name}#token=" in found.stdout

    record = owner.call("GET", f"/files/{file_id}")
    assert record["status"] == "QUARANTINED"
    assert "EICAR" in record["error"]["message"]
    assert "downloadUrl" not in record
    assert owner.call("GET", "/me/usage")["storedBytes"] == 0, "a quarantined file counts against no quota"
    assert visitor.request("GET", f"/shares/{share['token']}", auth=False).status_code == 404
    deadline = time.monotonic() + 10
    while len(_to_owner(_outbox(stack))) == told_before and time.monotonic() < deadline:
        time.sleep(0.1)
    [told] = _to_owner(_outbox(stack))[told_before:]
    assert "quarantin" in json.dumps(told).lower()

    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [(a["action"], a["result"]) for a in audit if a["executionName"] == name] == [
        ("start-rescan", "accepted"),
        ("quarantine", "quarantined"),
        ("rescan-result", "succeeded"),
    ]

    # Operators see the rescan in the console, labelled, with its own workflow.
    token = json.loads((stack.state_dir / STATE_FILE).read_text())["console"]["token"]
    headers = {"Authorization": f"Bearer {token}"}
    listed = requests.get(f"{stack.web_url}/console/api/executions", headers=headers, timeout=30).json()
    rescans = [e for e in listed["items"] if e["workflow"] == "RescanFiles"]
    assert name in [e["name"] for e in rescans]
    assert all(e["fileId"] is None for e in rescans)
    run = requests.get(f"{stack.web_url}/console/api/executions/{name}", headers=headers, timeout=30).json()
    assert (run["workflow"], run["status"]) == ("RescanFiles", "SUCCEEDED")

    # Both runs covered their window: there is nothing to resume.
    resumed = _rescan(stack, tmp_path, "--resume")
    assert resumed.returncode == 2
    assert "nothing to resume" in resumed.stderr
