"""Mutation tests: functions get only their declared packages and the template's environment, as on Lambda.

Each test runs `filepipe local` on a copy of the project with one mistake a developer might make, and
expects the failure Lambda gives, at the same step, with the same final status.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from filepipe.bench.e2e import sample_jpeg
from filepipe.local.client import BrowserClient
from filepipe.runtime_state import DEMO_EMAIL, DEMO_PASSWORD
from filepipe.template import ROOT
from tests.local.conftest import LocalProcess

pytestmark = pytest.mark.local

UNDECLARED_VARIABLE = "SHARE_LINK_DOMAIN"
RUN_ENDS_SECONDS = 10.0


def _project_copy(folder: Path) -> Path:
    """The template and everything it points at (CodeUri, DefinitionUri, ContentUri), copied."""
    shutil.copy(ROOT / "template.yaml", folder / "template.yaml")
    for name in ("functions", "statemachines"):
        shutil.copytree(ROOT / name, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
    return folder / "template.yaml"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{path.name} changed: {old!r} is not in it once"
    path.write_text(text.replace(old, new))


@pytest.fixture(scope="module")
def mistaken_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalProcess]:
    template = _project_copy(tmp_path_factory.mktemp("project"))
    functions = template.parent / "functions"
    # Validate imports a package that functions/requirements.txt does not declare (the venv has it).
    _edit(
        functions / "validate" / "handler.py",
        "from __future__ import annotations\n",
        "from __future__ import annotations\n\nimport yaml  # noqa: F401\n",
    )
    # The share function's settings gain a variable the template does not give it.
    public_handler = functions / "api" / "public_handler.py"
    _edit(public_handler, "    load_settings(ShareApiSettings)", "    load_settings(SharePageSettings)")
    public_handler.write_text(
        public_handler.read_text()
        + "\n\nfrom pydantic import Field\n\n\nclass SharePageSettings(ShareApiSettings):\n"
        + f'    share_link_domain: str = Field(alias="{UNDECLARED_VARIABLE}", min_length=1)\n'
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(
            UNDECLARED_VARIABLE, "files.example.com"
        )  # the developer's shell has it; Lambda does not
        running = LocalProcess(tmp_path_factory.mktemp("state"), ["--template", str(template)])
    yield running
    running.stop()


def _client(service: str, stack: LocalProcess) -> Any:
    return boto3.client(
        service,
        endpoint_url=stack.aws_endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def test_an_undeclared_package_fails_the_step_and_the_run_as_on_lambda(mistaken_stack: LocalProcess) -> None:
    browser = BrowserClient(mistaken_stack.web_url)
    browser.sign_in(DEMO_EMAIL, DEMO_PASSWORD)
    file_id = browser.upload("photo.jpg", sample_jpeg(16 * 1024), "image/jpeg")
    record = browser.wait_final(file_id, timeout=60)
    assert record["status"] == "FAILED", record
    assert record["error"]["code"] == "Runtime.ImportModuleError"

    stepfunctions: Any = _client("stepfunctions", mistaken_stack)
    machine = stepfunctions.list_state_machines()["stateMachines"][0]["stateMachineArn"]
    # The record says FAILED from the run's last states, a moment before the run itself has ended.
    deadline = time.monotonic() + RUN_ENDS_SECONDS
    while True:
        execution = next(
            e
            for e in stepfunctions.list_executions(stateMachineArn=machine)["executions"]
            if e["name"] == file_id
        )
        if execution["status"] != "RUNNING" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert execution["status"] == "FAILED"
    events = stepfunctions.get_execution_history(executionArn=execution["executionArn"])["events"]
    failures = [e for e in events if e["type"] in ("TaskFailed", "LambdaFunctionFailed")]
    assert failures, [e["type"] for e in events]
    failed = failures[0].get("taskFailedEventDetails") or failures[0]["lambdaFunctionFailedEventDetails"]
    assert failed["error"] == "Runtime.ImportModuleError"
    cause = json.loads(failed["cause"])
    assert cause["errorMessage"] == "Unable to import module 'validate.handler': No module named 'yaml'"
    assert cause["errorType"] == "Runtime.ImportModuleError"


def test_a_variable_the_template_does_not_give_fails_the_cold_start(mistaken_stack: LocalProcess) -> None:
    lambda_client: Any = _client("lambda", mistaken_stack)
    name = next(
        f["FunctionName"]
        for f in lambda_client.list_functions()["Functions"]
        if "ShareApiFunction" in f["FunctionName"]
    )
    response = lambda_client.invoke(FunctionName=name, Payload=b"{}")
    assert response["FunctionError"] == "Unhandled"
    error = json.loads(response["Payload"].read())
    assert error["errorType"] == "SettingsError"
    assert error["errorMessage"].startswith("SharePageSettings: 1 validation error")
    assert UNDECLARED_VARIABLE in error["errorMessage"]
