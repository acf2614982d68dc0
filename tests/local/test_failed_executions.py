"""A run that fails reaches the failed-executions queue through the template's rule, as on AWS."""

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


@pytest.fixture(scope="module")
def stack_without_scanner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalProcess]:
    # A template parameter override, the way to configure the stack: no clamd answers on port 9.
    running = LocalProcess(
        tmp_path_factory.mktemp("no-scanner"), ["--parameter", "ClamdAddress=tcp://127.0.0.1:9"]
    )
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
