"""A run that fails reaches the failed-executions queue through the template's rule, as on AWS: a scanner
outage in either mode, ClamAV's scan function or GuardDuty without clamd, fails closed into it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import boto3
import pytest

from filepipe.bench.e2e import sample_jpeg
from filepipe.local.client import BrowserClient
from filepipe.runtime_state import DEMO_EMAIL, DEMO_PASSWORD
from tests.local.conftest import LocalProcess

pytestmark = pytest.mark.local


# No clamd answers on port 9. In ClamAV mode a template parameter override, the way to configure the
# stack, points the scan function there; in GuardDuty mode the runtime's GuardDuty scans with that clamd.
NO_CLAMD = "tcp://127.0.0.1:9"
OUTAGES = {
    "ClamAV": ["--parameter", "Scanner=ClamAV", "--parameter", f"ClamdAddress={NO_CLAMD}"],
    "GuardDuty": ["--parameter", "Scanner=GuardDuty", "--clamd-address", NO_CLAMD],
}


@pytest.fixture(scope="module", params=sorted(OUTAGES), ids=str.lower)
def stack_without_scanner(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalProcess]:
    running = LocalProcess(tmp_path_factory.mktemp("no-scanner"), OUTAGES[request.param])
    yield running
    running.stop()


def test_a_failed_run_is_recorded_and_lands_in_the_failed_executions_queue(
    stack_without_scanner: LocalProcess,
) -> None:
    browser = BrowserClient(stack_without_scanner.web_url)
    browser.sign_in(DEMO_EMAIL, DEMO_PASSWORD)
    file_id = browser.upload("photo.jpg", sample_jpeg(64 * 1024), "image/jpeg")
    record = browser.wait_final(file_id, timeout=60)
    assert record["status"] == "FAILED", record
    assert record["error"]["code"] == "ScannerUnavailable"

    sqs = boto3.client(
        "sqs",
        endpoint_url=stack_without_scanner.aws_endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    url = next(u for u in sqs.list_queues()["QueueUrls"] if "FailedExecutionsQueue" in u)
    deadline = time.monotonic() + 10
    messages: list[dict[str, object]] = []
    while not messages and time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", [])
    assert messages, "no message in the failed-executions queue"
    detail = json.loads(str(messages[0]["Body"]))
    assert detail["name"] == file_id
    assert detail["status"] == "FAILED"
    assert json.loads(detail["input"])["file"]["fileId"] == file_id
