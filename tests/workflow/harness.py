"""Drive ProcessUpload in moto: Lambda tasks run the template's real handlers in this process."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import unquote

import boto3
from botocore.awsrequest import AWSResponse
from moto.core.botocore_stubber import MockRawResponse

from common.model import FileRef, ingest_key, new_file_id
from common.records import FileRecords, now_iso
from common.verdicts import ObjectVersion
from filepipe.local.services.awslambda.invoke import InvokeResult, invoke_in_process
from filepipe.local.services.events.delivery import execution_status_event, target_input
from filepipe.local.services.guardduty import events as guardduty_events
from filepipe.local.stack.model import FunctionSpec, Stack
from filepipe.ses import verify
from tests.iam import RolePolicy, acting_as, roles_of
from tests.stack import REGION, StackFixture

Replacement = Callable[[FunctionSpec, dict[str, Any]], InvokeResult | None]
# Called after each invocation the router answered: the function's logical id, its event and its result.
Invoked = Callable[[str, dict[str, Any], InvokeResult], None]
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
        self.after_invoke: Invoked | None = None

    def role(self, logical_id: str) -> RolePolicy:
        return self._roles[logical_id]

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
        if self.after_invoke is not None:
            self.after_invoke(spec.logical_id, event, result)
        headers = {
            "Content-Type": "application/json",
            "X-Amz-Executed-Version": "$LATEST",
            "x-amzn-RequestId": str(uuid.uuid4()),
        }
        if result.function_error:
            headers["X-Amz-Function-Error"] = result.function_error
        return AWSResponse(url, 200, headers, MockRawResponse(result.payload))


class GuardDutyStandIn:
    """GuardDuty Malware Protection for the workflow tests: each upload version is scanned (clamd decides,
    unless a test forces a result) and its "Object Scan Result" event put on the default bus.

    GuardDuty scans on its own, after the upload; by default the event is delivered once the run's "Await
    GuardDuty verdict" task has asked for it (on a thread of its own, as EventBridge would), the usual
    order when a scan takes longer than validation. ``delivery`` changes that: AT_UPLOAD delivers before the
    run starts, HELD keeps the events in ``held`` for the test to deliver. ``copies`` delivers each event
    that many times (EventBridge delivers at least once). It is also the GuardDuty client `filepipe replay`
    asks for new scans (``send_object_malware_scan``).
    """

    AFTER_AWAIT = "after await"
    AT_UPLOAD = "at upload"
    HELD = "held"

    def __init__(self, pipeline: Pipeline, clamd_address: str) -> None:
        self._pipeline = pipeline
        self._clamd_address = clamd_address
        self.delivery = self.AFTER_AWAIT
        self.copies = 1
        self.forced: list[tuple[str, list[str] | None]] = []
        self.held: list[dict[str, Any]] = []
        self.scan_requests: list[dict[str, str]] = []
        self.results: list[InvokeResult] = []
        self.awaits: list[dict[str, Any]] = []
        self.errors: list[str] = []
        # Scans not reported yet: each is scanned when it reports (a bomb a run rejects is never scanned).
        self._pending: dict[ObjectVersion, list[Callable[[], dict[str, Any]]]] = defaultdict(list)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def force(self, status: str, threats: list[str] | None = None) -> None:
        """The next scan reports ``status`` (with ``threats``) whatever the bytes."""
        self.forced.append((status, threats))

    def _verdict(self, data: bytes) -> tuple[str, list[str] | None]:
        if self.forced:
            return self.forced.pop(0)
        from common.errors import FilepipeError
        from scan.clamd import ClamdClient, ReplyKind

        try:
            reply = ClamdClient(self._clamd_address, timeout=30).instream([data])
        except FilepipeError:  # clamd down or too slow: GuardDuty's internal error
            return guardduty_events.FAILED, None
        if reply.kind is ReplyKind.FOUND and reply.detail:
            return guardduty_events.THREATS_FOUND, [reply.detail]
        if reply.kind is ReplyKind.CLEAN:
            return guardduty_events.NO_THREATS_FOUND, None
        return guardduty_events.FAILED, None

    def scan(self, ref: FileRef, data: bytes, etag: str) -> dict[str, Any]:
        """The event of one scan of ``ref``'s version."""
        status, threats = self._verdict(data)
        stack = self._pipeline.stack.stack
        return guardduty_events.object_scan_result(
            account=stack.attributes["IngestMalwareProtectionPlan"]["Arn"].split(":")[4],
            region=REGION,
            plan_arn=stack.attributes["IngestMalwareProtectionPlan"]["Arn"],
            bucket=ref.bucket,
            key=ref.key,
            version_id=ref.version,
            etag=etag,
            scan_status=guardduty_events.SCAN_STATUS_OF[status],
            result_status=status,
            threats=threats,
        )

    def _report(self, ref: FileRef, data: bytes, etag: str) -> None:
        if self.delivery == self.AT_UPLOAD:
            self.deliver(self.scan(ref, data, etag))
        elif self.delivery == self.HELD:
            self.held.append(self.scan(ref, data, etag))
        else:
            with self._lock:
                self._pending[ObjectVersion(ref.bucket, ref.key, ref.version)].append(
                    lambda: self.scan(ref, data, etag)
                )

    def uploaded(self, ref: FileRef, data: bytes, etag: str) -> None:
        self._report(ref, data, etag)

    def deliver(self, event: dict[str, Any]) -> None:
        """Deliver ``event`` ``copies`` times; a failed invocation of the verdict is kept in ``errors``."""
        for _ in range(self.copies):
            for result in self._pipeline.deliver_scan_result(event):
                self.results.append(result)
                if result.function_error:
                    self.errors.append(result.payload.decode())

    def invoked(self, logical_id: str, event: dict[str, Any], result: InvokeResult) -> None:
        """The router's hook: a run's await task has asked for its verdict; the pending scan reports now.

        A rescan's copy of a stored file lands under a prefix the plan guards: it is scanned like an upload.
        """
        if logical_id == "RescanFunction" and event.get("action") == "stage" and not result.function_error:
            staged = json.loads(result.payload)
            found = self._pipeline.s3.get_object(
                Bucket=staged["bucket"], Key=staged["key"], VersionId=staged["version"]
            )
            ref = FileRef.from_state({"file": staged})
            self.uploaded(ref, found["Body"].read(), str(found["ETag"]))
            return
        if logical_id != "ScanVerdictFunction" or "taskToken" not in event:
            return
        self.awaits.append(json.loads(result.payload))
        if result.function_error:
            return
        file = event["file"]
        with self._lock:
            pending = self._pending.pop(ObjectVersion(file["bucket"], file["key"], file["version"]), [])
        if not pending:
            return

        def report() -> None:
            for scanned in pending:
                self.deliver(scanned())

        thread = threading.Thread(target=report, name="guardduty-stand-in", daemon=True)
        self._threads.append(thread)
        thread.start()

    def send_object_malware_scan(self, *, S3Object: dict[str, str]) -> dict[str, Any]:
        """GuardDuty's SendObjectMalwareScan: a new scan of the object version, reported as uploads are."""
        self.scan_requests.append(dict(S3Object))
        s3 = self._pipeline.s3
        found = s3.get_object(Bucket=S3Object["Bucket"], Key=S3Object["Key"], VersionId=S3Object["VersionId"])
        ref = FileRef.from_object(S3Object["Bucket"], S3Object["Key"], S3Object["VersionId"])
        self._report(ref, found["Body"].read(), str(found["ETag"]))
        return {}

    def join(self, timeout: float = 30.0) -> None:
        for thread in self._threads:
            thread.join(timeout)

    def await_count(self, count: int, timeout: float = 30.0) -> None:
        """Wait until runs have asked for a verdict ``count`` times."""
        deadline = time.monotonic() + timeout
        while len(self.awaits) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.awaits)} of {count} verdict requests after {timeout} s")
            time.sleep(0.05)


def crash(error_type: str = "RuntimeError", message: str = "injected crash") -> InvokeResult:
    payload = {"errorType": error_type, "errorMessage": message, "stackTrace": []}
    return InvokeResult(json.dumps(payload).encode(), "Unhandled")


class Pipeline:
    """Uploads as the API and browser would, and delivers events as EventBridge and SQS would."""

    WORKFLOW_FUNCTIONS = (
        "RecordFunction",
        "ValidateFunction",
        "ScanFunction",
        "ScanVerdictFunction",
        "ThumbnailsFunction",
        "MetadataFunction",
        "PromoteFunction",
        "QuarantineFunction",
        "NotifyFunction",
        "StartFunction",
        "RescanFunction",
    )
    # Per Scanner: the function that gives the verdict, and the state that asks it.
    SCAN_STEPS: ClassVar[dict[str, tuple[str, str]]] = {
        "ClamAV": ("ScanFunction", "Scan for malware"),
        "GuardDuty": ("ScanVerdictFunction", "Await GuardDuty verdict"),
    }

    def __init__(self, stack: StackFixture, router: LambdaRouter, clamd_address: str | None = None) -> None:
        self.stack = stack
        self.router = router
        self.scanner = stack.stack.parameters["Scanner"]
        self.scan_function, self.scan_state = self.SCAN_STEPS[self.scanner]
        self.s3 = stack.client("s3")
        self.sqs = stack.client("sqs")
        self.sfn = stack.client("stepfunctions")
        self.records = FileRecords(stack.client("dynamodb"), stack.physical("FilesTable"))
        self.ingest = stack.physical("IngestBucket")
        self.clean = stack.physical("FilesBucket")
        self.quarantine = stack.physical("QuarantineBucket")
        self.state_machine = stack.physical("ProcessUploadStateMachine")
        self.rescan_machine = stack.physical("RescanFilesStateMachine")
        self.guardduty: GuardDutyStandIn | None = None
        if self.scanner == "GuardDuty":
            assert clamd_address is not None, "GuardDuty's stand-in scans with clamd"
            self.guardduty = GuardDutyStandIn(self, clamd_address)
            router.after_invoke = self.guardduty.invoked
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
        ref = FileRef(self.ingest, key, version["VersionId"], OWNER, file_id)
        if self.guardduty is not None:  # the protection plan scans every new upload version
            self.guardduty.uploaded(ref, data, str(version["ETag"]))
        return ref

    @property
    def functions(self) -> tuple[str, ...]:
        """The workflow's functions this stack has (only the chosen scanner's exist)."""
        return tuple(name for name in self.WORKFLOW_FUNCTIONS if name in self.stack.stack.functions)

    def deliver_scan_result(self, event: dict[str, Any]) -> list[InvokeResult]:
        """Put an event on the default bus as EventBridge delivers it: to each matching rule's Lambda
        targets, invoked as the function's role, with the target's input. The results, in order."""
        from moto.events.models import EventPattern

        events = self.stack.client("events")
        results = []
        for rule in events.list_rules()["Rules"]:
            if not EventPattern.load(rule.get("EventPattern")).matches_event(event):  # type: ignore[arg-type]
                continue
            for target in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]:
                if ":lambda:" not in target["Arn"]:
                    continue
                spec = self.stack.stack.function_by_name(target["Arn"])
                payload = json.loads(target_input(target, event, rule["Arn"], rule["Name"]))
                with acting_as(self.router.role(spec.logical_id)):
                    results.append(invoke_in_process(spec, payload))
        return results

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

    def execution_arn(self, name: str, state_machine: str | None = None) -> str:
        return (state_machine or self.state_machine).replace(":stateMachine:", ":execution:") + f":{name}"

    def wait(self, name: str, timeout: float = 60.0, state_machine: str | None = None) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        arn = self.execution_arn(name, state_machine)
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

    def rescan(self, name: str, **run: Any) -> dict[str, Any]:
        """Start a RescanFiles execution as `filepipe rescan` does and wait for it to end."""
        now = datetime.now(UTC)
        started = {
            "window": {
                "from": (now - timedelta(hours=1)).isoformat(),
                "to": (now + timedelta(minutes=1)).isoformat(),
            },
            "limit": 500,
            "dryRun": False,
            "cursor": None,
            "reason": "operator",
            **run,
        }
        self.sfn.start_execution(stateMachineArn=self.rescan_machine, name=name, input=json.dumps(started))
        return self.wait(name, timeout=60.0, state_machine=self.rescan_machine)

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
