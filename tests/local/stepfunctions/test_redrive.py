"""RedriveExecution against `filepipe local` over HTTP, and the status change events it emits as AWS does."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.local.conftest import LocalProcess
from tests.local.stepfunctions.scene import clients, workflow_role

pytestmark = pytest.mark.local

STATUS_CHANGE = "Step Functions Execution Status Change"


class Scene:
    """A state machine whose one task reads an object that is not there yet, and a queue of its events."""

    def __init__(self, local_stack: LocalProcess) -> None:
        client = clients(local_stack)
        self.s3, self.sqs, self.sfn = client("s3"), client("sqs"), client("stepfunctions")
        iam, events = client("iam"), client("events")
        self.bucket = "redrive-test-objects"
        self.s3.create_bucket(Bucket=self.bucket)
        reads = {
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:ListBucket"],
            "Resource": [f"arn:aws:s3:::{self.bucket}", f"arn:aws:s3:::{self.bucket}/*"],
        }
        role_arn = workflow_role(iam, "redrive-test", [reads])
        definition = {
            "StartAt": "Read the object",
            "States": {
                "Read the object": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::aws-sdk:s3:headObject",
                    "Parameters": {"Bucket": self.bucket, "Key": "later"},
                    "ResultPath": None,
                    "End": True,
                }
            },
        }
        self.machine = self.sfn.create_state_machine(
            name="redrive-test", definition=json.dumps(definition), roleArn=role_arn
        )["stateMachineArn"]
        self.queue = self.sqs.create_queue(QueueName="redrive-test-events")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        rule_arn = events.put_rule(
            Name="redrive-test-events",
            EventPattern=json.dumps({"source": ["aws.states"], "detail-type": [STATUS_CHANGE]}),
        )["RuleArn"]
        delivery = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
                }
            ],
        }
        self.sqs.set_queue_attributes(QueueUrl=self.queue, Attributes={"Policy": json.dumps(delivery)})
        events.put_targets(Rule="redrive-test-events", Targets=[{"Id": "queue", "Arn": queue_arn}])

    def wait(self, arn: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            execution: dict[str, Any] = self.sfn.describe_execution(executionArn=arn)
            if execution["status"] != "RUNNING":
                return execution
            time.sleep(0.05)
        raise TimeoutError(f"{arn} still running after {timeout} s")

    def status_changes(self, arn: str, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        """The first ``count`` status change details of this execution (bounded wait), oldest first."""
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(found) < count and time.monotonic() < deadline:
            batch = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            for message in batch.get("Messages", []):
                event = json.loads(message["Body"])
                if event["detail"]["executionArn"] == arn:
                    found.append(event["detail"])
                self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"])
        # RUNNING comes before the outcome it leads to; redrives count up.
        found.sort(key=lambda d: (d["redriveCount"], d["status"] != "RUNNING"))
        return found


@pytest.fixture(scope="module")
def scene(local_stack: LocalProcess) -> Scene:
    return Scene(local_stack)


def test_a_failed_execution_is_redriven_over_http_with_the_status_events_aws_emits(scene: Scene) -> None:
    arn = scene.sfn.start_execution(stateMachineArn=scene.machine, name="first", input="{}")["executionArn"]
    failed = scene.wait(arn)
    assert failed["status"] == "FAILED"
    assert (failed["redriveCount"], failed["redriveStatus"]) == (0, "REDRIVABLE")
    scene.s3.put_object(Bucket=scene.bucket, Key="later", Body=b"now it is there")

    redriven = scene.sfn.redrive_execution(executionArn=arn)

    succeeded = scene.wait(arn)
    assert succeeded["status"] == "SUCCEEDED"
    assert (succeeded["redriveCount"], succeeded["redriveDate"]) == (1, redriven["redriveDate"])
    changes = scene.status_changes(arn, 4)
    assert [(d["status"], d["redriveCount"]) for d in changes] == [
        ("RUNNING", 0),
        ("FAILED", 0),
        ("RUNNING", 1),
        ("SUCCEEDED", 1),
    ]
    running_again = changes[2]
    assert running_again["redriveStatus"] == "NOT_REDRIVABLE"
    assert running_again["redriveStatusReason"] == "Execution is RUNNING and cannot be redriven"
    assert running_again["redriveDate"] == int(redriven["redriveDate"].timestamp() * 1000)
    assert running_again["stopDate"] is None
    assert running_again["startDate"] == changes[0]["startDate"]  # the same execution
    assert changes[1]["redriveStatus"] == "REDRIVABLE"
    history = scene.sfn.get_execution_history(executionArn=arn)["events"]
    assert [e["type"] for e in history].count("ExecutionRedriven") == 1

    with pytest.raises(ClientError) as caught:
        scene.sfn.redrive_execution(executionArn=arn)
    assert caught.value.response["Error"] == {
        "Code": "ExecutionNotRedrivable",
        "Message": "Execution is SUCCEEDED and cannot be redriven",
    }
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
