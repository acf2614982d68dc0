"""Drive ProcessUpload in moto: Lambda tasks run the template's real handlers in this process."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import boto3
from botocore.awsrequest import AWSResponse
from moto.core.botocore_stubber import MockRawResponse

from common.model import FileRef, ingest_key, new_file_id
from common.records import FileRecords, now_iso
from filepipe.local.services.awslambda.invoke import InvokeResult, invoke_in_process
from filepipe.local.services.events.delivery import execution_status_event, target_input
from filepipe.local.stack.model import FunctionSpec, Stack
from filepipe.ses import verify
from tests.iam import RolePolicy, acting_as, roles_of
from tests.stack import REGION, StackFixture

Replacement = Callable[[FunctionSpec, dict[str, Any]], InvokeResult | None]
OWNER = "0f6c5e2a-7b1d-4c55-9d0e-2d7a1c9b8e41"
OWNER_EMAIL = "owner@example.com"
SENDER = "filepipe@example.com"


class LambdaRouter:
    """A botocore before-send hook answering lambda.Invoke from moto's interpreter.

    Faults can be injected per function: a service error before the handler runs (what Lambda
    itself answers when throttled), or a replacement result for payloads that match. Each function's
    S3 calls are answered as AWS answers its role (tests/iam.py).
    """

    def __init__(self, stack: Stack, roles: dict[str, RolePolicy]) -> None:
        self._stack = stack
        self._roles = roles
        self.calls: Counter[str] = Counter()
        self.events: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._service_errors: dict[str, list[tuple[int, str]]] = defaultdict(list)
        self._replacements: dict[str, Replacement] = {}

    def service_error(self, logical_id: str, status: int, code: str, times: int = 1) -> None:
        self._service_errors[logical_id].extend([(status, code)] * times)

    def replace(self, logical_id: str, replacement: Replacement) -> None:
        self._replacements[logical_id] = replacement

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        url = request.url
        if "/functions/" not in url or not url.split("?")[0].endswith("/invocations"):
            return None
        name = unquote(url.split("/functions/")[1].split("/invocations")[0])
        spec = self._stack.function_by_name(name)
        self.calls[spec.logical_id] += 1
        event = json.loads(request.body or b"{}")
        self.events[spec.logical_id].append(event)
        if self._service_errors[spec.logical_id]:
            status, code = self._service_errors[spec.logical_id].pop(0)
            body = json.dumps({"Type": "User", "message": f"injected {code}"}).encode()
            headers = {
                "Content-Type": "application/json",
                "x-amzn-ErrorType": code,
                "x-amzn-RequestId": str(uuid.uuid4()),
            }
            return AWSResponse(url, status, headers, MockRawResponse(body))
        with acting_as(self._roles[spec.logical_id]):
            result = None
            if spec.logical_id in self._replacements:
                result = self._replacements[spec.logical_id](spec, event)
            if result is None:
                result = invoke_in_process(spec, event)
        headers = {
            "Content-Type": "application/json",
            "X-Amz-Executed-Version": "$LATEST",
            "x-amzn-RequestId": str(uuid.uuid4()),
        }
        if result.function_error:
            headers["X-Amz-Function-Error"] = result.function_error
        return AWSResponse(url, 200, headers, MockRawResponse(result.payload))


def crash(error_type: str = "RuntimeError", message: str = "injected crash") -> InvokeResult:
    payload = {"errorType": error_type, "errorMessage": message, "stackTrace": []}
    return InvokeResult(json.dumps(payload).encode(), "Unhandled")


class Pipeline:
    """Uploads as the API and browser would, and delivers events as EventBridge and SQS would."""

    WORKFLOW_FUNCTIONS = (
        "RecordFunction",
        "ValidateFunction",
        "ScanFunction",
        "ThumbnailsFunction",
        "MetadataFunction",
        "PromoteFunction",
        "QuarantineFunction",
        "NotifyFunction",
        "StartFunction",
    )

    def __init__(self, stack: StackFixture, router: LambdaRouter) -> None:
        self.stack = stack
        self.router = router
        self.s3 = stack.client("s3")
        self.sqs = stack.client("sqs")
        self.sfn = stack.client("stepfunctions")
        self.records = FileRecords(stack.client("dynamodb"), stack.physical("FilesTable"))
        self.ingest = stack.physical("IngestBucket")
        self.clean = stack.physical("FilesBucket")
        self.quarantine = stack.physical("QuarantineBucket")
        self.state_machine = stack.physical("ProcessUploadStateMachine")
        sender = stack.stack.parameters["SenderEmail"]
        if sender:
            # The operator's SES step (on AWS, a click on SES's link): the sender and, as the SES sandbox
            # requires, the recipient.
            verify(stack.client("ses"), [sender, OWNER_EMAIL])

    def upload(self, data: bytes, name: str = "photo.jpg", declared_type: str = "image/jpeg") -> FileRef:
        """Create the UPLOADING record like POST /uploads does, then put the object like the browser."""
        file_id = new_file_id()
        now = now_iso()
        self.records.create(
            {
                "fileId": file_id,
                "ownerId": OWNER,
                "ownerEmail": OWNER_EMAIL,
                "name": name,
                "size": len(data),
                "contentType": declared_type,
                "status": "UPLOADING",
                "createdAt": now,
                "updatedAt": now,
            }
        )
        key = ingest_key(OWNER, file_id)
        version = self.s3.put_object(Bucket=self.ingest, Key=key, Body=data, ContentType=declared_type)
        return FileRef(self.ingest, key, version["VersionId"], OWNER, file_id)

    def queued_start_messages(self) -> list[dict[str, Any]]:
        """Everything the upload rule put on the start queue (bounded drain)."""
        url = self.stack.physical("StartQueue")
        messages: list[dict[str, Any]] = []
        for _ in range(20):
            batch = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            if not batch.get("Messages"):
                break
            messages.extend(batch["Messages"])
        return messages

    def start(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """Invoke the start function with an SQS event, as the event source mapping would."""
        event = {
            "Records": [
                {
                    "messageId": message["MessageId"],
                    "receiptHandle": message["ReceiptHandle"],
                    "body": message["Body"],
                    "attributes": {},
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.stack.stack.attributes["StartQueue"]["Arn"],
                    "awsRegion": REGION,
                }
                for message in messages
            ]
        }
        result = invoke_in_process(self.stack.function("StartFunction"), event)
        assert result.function_error is None, result.payload
        outcome: dict[str, Any] = json.loads(result.payload)
        return outcome

    def execution_arn(self, name: str) -> str:
        return self.state_machine.replace(":stateMachine:", ":execution:") + f":{name}"

    def wait(self, name: str, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        arn = self.execution_arn(name)
        while time.monotonic() < deadline:
            execution: dict[str, Any] = self.sfn.describe_execution(executionArn=arn)
            if execution["status"] != "RUNNING":
                return execution
            time.sleep(0.05)
        raise TimeoutError(f"execution {name} still running after {timeout} s")

    def process(self, data: bytes, **upload: Any) -> tuple[FileRef, dict[str, Any]]:
        """Upload, deliver the start event, and wait for the run to end."""
        ref = self.upload(data, **upload)
        messages = self.queued_start_messages()
        assert len(messages) == 1, f"expected one start message, got {len(messages)}"
        assert self.start(messages) == {"batchItemFailures": []}
        return ref, self.wait(ref.file_id)

    def record(self, ref: FileRef) -> dict[str, Any]:
        record = self.records.get(ref.owner_id, ref.file_id)
        assert record is not None
        return record

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        listed = self.s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
        return sorted(item["Key"] for item in listed.get("Contents", []))

    def ingest_versions(self, ref: FileRef) -> list[str]:
        listed = self.s3.list_object_versions(Bucket=self.ingest, Prefix=ref.key)
        return [v["VersionId"] for v in listed.get("Versions", [])]

    def sent_emails(self) -> list[Any]:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.ses.models import ses_backends

        return list(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages)

    def publish_status_change(self, execution: dict[str, Any]) -> None:
        """Deliver the status-change event Step Functions emits when a run ends to the template's rules.

        moto neither emits this event nor applies a target's InputPath, so the delivery goes through
        the local runtime's EventBridge emulation, reading each rule and target back from the stack.
        """
        from moto.events.models import EventPattern

        event = execution_status_event(
            execution_arn=execution["executionArn"],
            state_machine_arn=execution["stateMachineArn"],
            name=execution["name"],
            status=execution["status"],
            start_date=execution["startDate"],
            stop_date=execution.get("stopDate"),
            input_text=execution.get("input", "{}"),
            output_text=execution.get("output"),
            error=execution.get("error"),
            cause=execution.get("cause"),
            account=execution["executionArn"].split(":")[4],
            region=REGION,
        )
        events = self.stack.client("events")
        for rule in events.list_rules()["Rules"]:
            if not EventPattern.load(rule.get("EventPattern")).matches_event(event):  # type: ignore[arg-type]
                continue
            for target in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]:
                body = target_input(target, event, rule["Arn"], rule["Name"])
                queue = self.sqs.get_queue_url(QueueName=target["Arn"].split(":")[-1])["QueueUrl"]
                self.sqs.send_message(QueueUrl=queue, MessageBody=body)

    def watch_file_processed(self) -> str:
        """A queue that gets every FileProcessed event from here on (a rule on the stack's bus, as a
        consumer of the bus would add); read it with ``file_processed``."""
        bus = self.stack.physical("FilepipeEventBus")
        events = self.stack.client("events")
        queue_url = self.sqs.create_queue(QueueName="file-processed-watch")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events.put_rule(
            Name="file-processed-watch",
            EventBusName=bus,
            EventPattern=json.dumps({"detail-type": ["FileProcessed"]}),
        )
        events.put_targets(
            Rule="file-processed-watch", EventBusName=bus, Targets=[{"Id": "watch", "Arn": arn}]
        )
        return str(queue_url)

    def file_processed(self, queue_url: str) -> list[dict[str, Any]]:
        """The FileProcessed events' details delivered to a ``watch_file_processed`` queue so far."""
        details: list[dict[str, Any]] = []
        for _ in range(20):
            batch = self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            if not batch.get("Messages"):
                break
            details.extend(json.loads(m["Body"])["detail"] for m in batch["Messages"])
        return details

    def dlq_messages(self) -> list[dict[str, Any]]:
        url = self.stack.physical("FailedExecutionsQueue")
        batch = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        return [json.loads(m["Body"]) for m in batch.get("Messages", [])]


def install_router(stack: StackFixture) -> tuple[LambdaRouter, Callable[[], None]]:
    """Register the router on the default session, whose clients moto's interpreter uses."""
    router = LambdaRouter(stack.stack, roles_of(stack))
    events = boto3._get_default_session().events
    events.register_first("before-send.lambda.Invoke", router, unique_id="filepipe-lambda-router")

    def uninstall() -> None:
        events.unregister("before-send.lambda.Invoke", unique_id="filepipe-lambda-router")

    return router, uninstall
