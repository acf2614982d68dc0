"""IAM on `filepipe local`: a grant missing from a copy of the template fails here as it fails on AWS.

Each runtime below runs a copy of template.yaml with mistakes a developer might make (a grant dropped, a
bucket denied to everyone, a queue policy that lost its queue); the tests assert the failure AWS gives:
the same error, at the same step, with the same final status. The real template's runtime
(``local_stack``) shows the grants it has are the ones it needs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from filepipe.clamd import eicar_bytes
from filepipe.local.client import BrowserClient
from filepipe.runtime_state import ACCESS_KEY_ID, DEMO_EMAIL, DEMO_PASSWORD, SECRET_ACCESS_KEY
from filepipe.template import ROOT, TEMPLATE_PATH
from tests import images
from tests.local.conftest import DEMO_EMAIL_ARGS, LocalProcess
from tests.local.provisioning import Mutation, replace

pytestmark = pytest.mark.local

REGION = "us-east-1"
ACCOUNT = "123456789012"
WAIT_SECONDS = 60.0


def start(factory: pytest.TempPathFactory, name: str, *mutations: Mutation) -> LocalProcess:
    """`filepipe local` on a copy of template.yaml changed by ``mutations``."""
    copy = factory.mktemp(f"template-{name}")
    for folder in ("functions", "statemachines"):
        (copy / folder).symlink_to(ROOT / folder, target_is_directory=True)
    text = TEMPLATE_PATH.read_text()
    for mutate in mutations:
        text = mutate(text)
    (copy / "template.yaml").write_text(text)
    return LocalProcess(
        factory.mktemp(f"state-{name}"), [*DEMO_EMAIL_ARGS, "--template", str(copy / "template.yaml")]
    )


def admin(stack: LocalProcess, service: str) -> Any:
    """A client of the operator: the runtime's key, the account's administrator."""
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=stack.aws_endpoint,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        config=Config(signature_version="s3v4", retries={"max_attempts": 1}),
    )


def as_role(stack: LocalProcess, role_logical_id: str, service: str) -> Any:
    """A client signing with a session of one of the template's roles, as its function does."""
    role = stack_physical(stack)[role_logical_id]
    iam = admin(stack, "iam")
    arn = iam.get_role(RoleName=role)["Role"]["Arn"]
    # Only Lambda may assume a function's role; the operator lets the account assume it too, for the test.
    trust = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
    account_too = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "sts:AssumeRole",
    }
    if account_too not in trust["Statement"]:
        trust["Statement"].append(account_too)
        iam.update_assume_role_policy(RoleName=role, PolicyDocument=json.dumps(trust))
    issued = admin(stack, "sts").assume_role(RoleArn=arn, RoleSessionName="test")["Credentials"]
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=stack.aws_endpoint,
        aws_access_key_id=issued["AccessKeyId"],
        aws_secret_access_key=issued["SecretAccessKey"],
        aws_session_token=issued["SessionToken"],
        config=Config(signature_version="s3v4", retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )


def stack_physical(stack: LocalProcess) -> dict[str, str]:
    physical: dict[str, str] = json.loads((stack.state_dir / "runtime.json").read_text())["physical"]
    return physical


def browser(stack: LocalProcess) -> BrowserClient:
    client = BrowserClient(stack.web_url)
    client.sign_in(DEMO_EMAIL, DEMO_PASSWORD)
    return client


def history(stack: LocalProcess, execution_name: str) -> list[dict[str, Any]]:
    sfn = admin(stack, "stepfunctions")
    machine = stack_physical(stack)["ProcessUploadStateMachine"]
    arn = machine.replace(":stateMachine:", ":execution:") + f":{execution_name}"
    deadline = time.monotonic() + WAIT_SECONDS
    while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
        assert time.monotonic() < deadline, f"{execution_name} still running"
        time.sleep(0.2)
    events: list[dict[str, Any]] = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    return events


def task_failures(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    details = [e.get("taskFailedEventDetails") or e.get("lambdaFunctionFailedEventDetails") for e in events]
    return [detail for detail in details if detail]


def refusal(call: Callable[[], Any]) -> tuple[int, str, str]:
    with pytest.raises(ClientError) as raised:
        call()
    response = raised.value.response
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


# ------------------------------------------------------------------ the real template


def test_each_function_signs_as_its_own_role_and_the_operator_as_the_administrator(
    local_stack: LocalProcess,
) -> None:
    # The API signs the browser's upload form with its own session, not with a key of the runtime's.
    ticket = browser(local_stack).request_upload("a.jpg", 10, "image/jpeg")
    assert ticket.fields["x-amz-credential"].startswith("ASIA")
    assert ticket.fields["x-amz-security-token"]
    identity = as_role(local_stack, "PromoteFunctionRole", "sts").get_caller_identity()
    role = stack_physical(local_stack)["PromoteFunctionRole"]
    assert identity["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/test"
    buckets = admin(local_stack, "s3").list_buckets()["Buckets"]
    assert buckets  # any other key is the account's administrator, as a developer's own credentials are


def test_a_role_is_refused_what_its_policies_do_not_grant_in_each_services_own_words(
    local_stack: LocalProcess,
) -> None:
    physical = stack_physical(local_stack)
    role = physical["ShareApiFunctionRole"]
    caller = f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/test"
    table = physical["FilesTable"]
    status, code, message = refusal(
        lambda: as_role(local_stack, "ShareApiFunctionRole", "dynamodb").scan(TableName=table)
    )
    assert (status, code) == (400, "AccessDeniedException")
    assert message == (
        f"User: {caller} is not authorized to perform: dynamodb:Scan on resource: "
        f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table} because no identity-based policy allows the "
        "dynamodb:Scan action"
    )
    ingest = physical["IngestBucket"]
    status, code, message = refusal(
        lambda: as_role(local_stack, "ShareApiFunctionRole", "s3").get_object(Bucket=ingest, Key="uploads/x")
    )
    assert (status, code) == (403, "AccessDenied")
    assert message == (
        f"User: {caller} is not authorized to perform: s3:GetObject on resource: "
        f'"arn:aws:s3:::{ingest}/uploads/x" because no identity-based policy allows the s3:GetObject action'
    )
    queue = admin(local_stack, "sqs").get_queue_url(QueueName=physical["StartQueue"].rsplit("/", 1)[-1])[
        "QueueUrl"
    ]
    status, code, message = refusal(
        lambda: as_role(local_stack, "ShareApiFunctionRole", "sqs").send_message(
            QueueUrl=queue, MessageBody="{}"
        )
    )
    assert (status, code) == (403, "AccessDenied")
    assert "sqs:sendmessage on resource" in message
    machine = physical["ProcessUploadStateMachine"]
    status, code, message = refusal(
        lambda: as_role(local_stack, "ShareApiFunctionRole", "stepfunctions").start_execution(
            stateMachineArn=machine
        )
    )
    assert (status, code) == (400, "AccessDeniedException")
    assert f"states:StartExecution on resource: {machine}" in message


def test_a_missing_object_is_404_to_a_role_that_may_list_and_403_to_one_that_may_not(
    local_stack: LocalProcess,
) -> None:
    ingest = stack_physical(local_stack)["IngestBucket"]
    lister = as_role(local_stack, "ValidateFunctionRole", "s3")
    assert refusal(lambda: lister.head_object(Bucket=ingest, Key="uploads/missing"))[:2] == (404, "404")
    assert refusal(lambda: lister.get_object(Bucket=ingest, Key="uploads/missing"))[:2] == (404, "NoSuchKey")
    # The API may write uploads but not list the ingest bucket: S3 will not say whether the key exists.
    writer = as_role(local_stack, "ApiFunctionRole", "s3")
    writer.put_object(Bucket=ingest, Key="uploads/someone/present", Body=b"x")
    assert refusal(lambda: writer.head_object(Bucket=ingest, Key="uploads/someone/present"))[:2] == (
        403,
        "403",
    )


def test_a_read_naming_a_version_is_authorised_as_get_object_version(local_stack: LocalProcess) -> None:
    files = stack_physical(local_stack)["FilesBucket"]
    version = admin(local_stack, "s3").put_object(Bucket=files, Key="files/u/v/original", Body=b"v1")[
        "VersionId"
    ]
    # The share function may s3:GetObject the files bucket's files/*, not s3:GetObjectVersion.
    share = as_role(local_stack, "ShareApiFunctionRole", "s3")
    assert share.get_object(Bucket=files, Key="files/u/v/original")["Body"].read() == b"v1"
    status, code, message = refusal(
        lambda: share.get_object(Bucket=files, Key="files/u/v/original", VersionId=version)
    )
    assert (status, code) == (403, "AccessDenied")
    assert "s3:GetObjectVersion" in message


def test_a_presigned_get_is_authorised_as_its_signer_when_it_is_used(local_stack: LocalProcess) -> None:
    physical = stack_physical(local_stack)
    admin(local_stack, "s3").put_object(Bucket=physical["IngestBucket"], Key="uploads/u/f", Body=b"upload")
    admin(local_stack, "s3").put_object(
        Bucket=physical["FilesBucket"], Key="files/u/f/original", Body=b"clean"
    )
    signer = as_role(local_stack, "ShareApiFunctionRole", "s3")
    readable = signer.generate_presigned_url(
        "get_object", Params={"Bucket": physical["FilesBucket"], "Key": "files/u/f/original"}
    )
    assert requests.get(readable, timeout=10).content == b"clean"
    unreadable = signer.generate_presigned_url(
        "get_object", Params={"Bucket": physical["IngestBucket"], "Key": "uploads/u/f"}
    )
    answer = requests.get(unreadable, timeout=10)
    assert answer.status_code == 403
    assert "<Code>AccessDenied</Code>" in answer.text
    assert "s3:GetObject" in answer.text


def test_a_tls_only_bucket_policy_lets_the_runtime_s_requests_through_and_is_stored_whole(
    local_stack: LocalProcess,
) -> None:
    files = stack_physical(local_stack)["FilesBucket"]
    stored = json.loads(admin(local_stack, "s3").get_bucket_policy(Bucket=files)["Policy"])
    assert [s["Sid"] for s in stored["Statement"]] == ["TlsOnly"]  # as deployed, not a local subset
    assert "IAM roles and policies are created but not enforced" not in local_stack.output()
    assert "bucket policies are stored but not enforced" not in local_stack.output()


# ------------------------------------------------------------------ the workflow's grants


PROMOTE_LISTS_BOTH = "              Resource: [!GetAtt FilesBucket.Arn, !GetAtt IngestBucket.Arn]\n"
QUARANTINE_POLICY = (
    "      Bucket: !Ref QuarantineBucket\n"
    "      PolicyDocument:\n"
    '        Version: "2012-10-17"\n'
    "        Statement:\n"
)
NOBODY_WRITES_QUARANTINE = (
    "          - Sid: NobodyWrites\n"
    "            Effect: Deny\n"
    '            Principal: "*"\n'
    "            Action: s3:PutObject\n"
    '            Resource: !Sub "${QuarantineBucket.Arn}/*"\n'
)
NOTIFY_SENDS_AS = "                  ses:FromAddress: !Ref SenderEmail\n"
# The notify function's grant follows its SES one (the share function has one of its own).
NOTIFY_PUTS_EVENTS = (
    NOTIFY_SENDS_AS + "        - EventBridgePutEventsPolicy: {EventBusName: !Ref FilepipeEventBus}\n"
)


@pytest.fixture(scope="module")
def workflow_mistakes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalProcess]:
    running = start(
        tmp_path_factory,
        "workflow",
        # The previous issue's fix undone: Promote may no longer list the files bucket.
        replace(PROMOTE_LISTS_BOTH, "              Resource: [!GetAtt IngestBucket.Arn]\n"),
        # The quarantine bucket denied to everyone.
        replace(QUARANTINE_POLICY, QUARANTINE_POLICY + NOBODY_WRITES_QUARANTINE),
        # Notify loses its EventBridge grant, and may send email only from another address.
        replace(NOTIFY_PUTS_EVENTS, NOTIFY_SENDS_AS.replace("!Ref SenderEmail", "someone-else@example.com")),
    )
    yield running
    running.stop()


def test_without_list_bucket_the_clean_file_ends_failed_at_promote(workflow_mistakes: LocalProcess) -> None:
    owner = browser(workflow_mistakes)
    file_id = owner.upload("photo.jpg", images.jpeg_with_exif((640, 480)), "image/jpeg")
    record = owner.wait_final(file_id, timeout=WAIT_SECONDS, interval=0.2)
    assert record["status"] == "FAILED", record
    # S3 answers Promote's HEAD of the copy it has not made yet with 403, not 404, as on AWS.
    assert "(403) when calling the HeadObject operation" in record["error"]["message"], record
    failures = task_failures(history(workflow_mistakes, file_id))
    assert failures
    assert all("HeadObject" in f["cause"] for f in failures)
    assert {json.loads(f["cause"])["errorType"] for f in failures} == {"ClientError"}


def test_a_bucket_denied_to_everyone_refuses_the_quarantine_and_the_operator_too(
    workflow_mistakes: LocalProcess,
) -> None:
    owner = browser(workflow_mistakes)
    file_id = owner.upload("notes.txt", eicar_bytes(), "text/plain")
    record = owner.wait_final(file_id, timeout=WAIT_SECONDS, interval=0.2)
    assert record["status"] == "FAILED", record
    assert "with an explicit deny in a resource-based policy" in record["error"]["message"], record
    quarantine = stack_physical(workflow_mistakes)["QuarantineBucket"]
    status, code, message = refusal(
        lambda: admin(workflow_mistakes, "s3").put_object(Bucket=quarantine, Key="quarantine/x", Body=b"x")
    )
    assert (status, code) == (403, "AccessDenied")
    assert message == (
        f"User: arn:aws:iam::{ACCOUNT}:root is not authorized to perform: s3:PutObject on resource: "
        f'"arn:aws:s3:::{quarantine}/quarantine/x" with an explicit deny in a resource-based policy'
    )


def test_without_its_grants_the_owner_is_not_notified_and_the_outcome_stands(
    workflow_mistakes: LocalProcess,
) -> None:
    owner = browser(workflow_mistakes)
    file_id = owner.upload("cat.jpg", images.exe(), "image/jpeg")
    record = owner.wait_final(file_id, timeout=WAIT_SECONDS, interval=0.2)
    assert record["status"] == "REJECTED", record
    events = history(workflow_mistakes, file_id)
    assert events[-1]["type"] == "ExecutionSucceeded"
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
    assert "Report missed notification" in entered
    # Validate's rejection, then Notify's refused PutEvents, which no retry repeats.
    [failure] = [f for f in task_failures(events) if f["error"] != "FileRejected"]
    assert failure["error"] == "AccessDeniedException"
    # SES refuses the email too: the grant's ses:FromAddress names another sender. Nothing reached the outbox.
    # (No file of this runtime ends where an email is sent but this one.)
    assert requests.get(f"{workflow_mistakes.aws_endpoint}/_filepipe/outbox", timeout=10).json() == []
    notify = as_role(workflow_mistakes, "NotifyFunctionRole", "ses")
    status, code, message = refusal(
        lambda: notify.send_email(
            Source="filepipe@example.com",
            Destination={"ToAddresses": [DEMO_EMAIL]},
            Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}},
        )
    )
    role = stack_physical(workflow_mistakes)["NotifyFunctionRole"]
    assert (status, code) == (403, "AccessDenied")
    assert message == (
        f"User `arn:aws:sts::{ACCOUNT}:assumed-role/{role}/test' is not authorized to perform "
        f"`ses:SendEmail' on resource `arn:aws:ses:{REGION}:{ACCOUNT}:identity/filepipe@example.com'"
    )
    assert "events:PutEvents" in failure["cause"]


# ------------------------------------------------------------------ the API's grants


API_TABLE_ACTIONS = (
    "Action: [dynamodb:GetItem, dynamodb:PutItem, dynamodb:UpdateItem, dynamodb:DeleteItem, dynamodb:Query]"
)


@pytest.fixture(scope="module")
def api_without_put_item(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalProcess]:
    running = start(
        tmp_path_factory,
        "api",
        replace(API_TABLE_ACTIONS, API_TABLE_ACTIONS.replace(" dynamodb:PutItem,", "")),
    )
    yield running
    running.stop()


def test_without_put_item_asking_for_an_upload_is_a_server_error(api_without_put_item: LocalProcess) -> None:
    owner = browser(api_without_put_item)
    response = owner.request("POST", "/uploads", {"name": "a.jpg", "size": 10, "contentType": "image/jpeg"})
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "InternalError"
    deadline = time.monotonic() + 10
    while "dynamodb:PutItem" not in api_without_put_item.output():
        assert time.monotonic() < deadline, api_without_put_item.output()
        time.sleep(0.1)
    assert "AccessDeniedException" in api_without_put_item.output()


# ------------------------------------------------------------------ deliveries, state machine, presigned POST


START_QUEUES = "            Resource: [!GetAtt StartQueue.Arn, !GetAtt StartDeadLetterQueue.Arn]\n"
MACHINE_INVOKES_RECORD = "        - LambdaInvokePolicy: {FunctionName: !Ref RecordFunction}\n"
API_WRITES_UPLOADS = (
    "              Action: [s3:PutObject, s3:ListMultipartUploadParts, s3:AbortMultipartUpload, "
    "s3:DeleteObject]\n"
)


@pytest.fixture(scope="module")
def delivery_mistakes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalProcess]:
    running = start(
        tmp_path_factory,
        "deliveries",
        # The queue policy lost the start queue: EventBridge may write to its DLQ only.
        replace(START_QUEUES, "            Resource: [!GetAtt StartDeadLetterQueue.Arn]\n"),
        # The state machine may no longer invoke the record function.
        replace(MACHINE_INVOKES_RECORD, ""),
        # The API may no longer write uploads: the POST it signs is refused when the browser uses it.
        replace(API_WRITES_UPLOADS, API_WRITES_UPLOADS.replace("s3:PutObject, ", "")),
    )
    yield running
    running.stop()


def test_a_presigned_post_carries_its_signers_permissions(delivery_mistakes: LocalProcess) -> None:
    owner = browser(delivery_mistakes)
    data = images.jpeg_with_exif((64, 48))
    ticket = owner.request_upload("a.jpg", len(data), "image/jpeg")  # signing needs no permission
    answer = owner.post_file(ticket, data, "image/jpeg")
    assert answer.status_code == 403
    assert "<Code>AccessDenied</Code>" in answer.text
    assert "s3:PutObject" in answer.text
    assert "ApiFunctionRole" in answer.text


def test_a_queue_policy_that_lost_the_queue_sends_the_upload_event_to_the_dlq(
    delivery_mistakes: LocalProcess,
) -> None:
    physical = stack_physical(delivery_mistakes)
    admin(delivery_mistakes, "s3").put_object(
        Bucket=physical["IngestBucket"], Key="uploads/someone/01ABCDEFGHJKMNPQRSTVWXYZ00", Body=b"x"
    )
    sqs = admin(delivery_mistakes, "sqs")
    deadline = time.monotonic() + WAIT_SECONDS
    messages: list[dict[str, Any]] = []
    while not messages:
        assert time.monotonic() < deadline, "the event never reached the start DLQ"
        messages = sqs.receive_message(
            QueueUrl=physical["StartDeadLetterQueue"], MessageAttributeNames=["All"], WaitTimeSeconds=1
        ).get("Messages", [])
    attributes = {name: value["StringValue"] for name, value in messages[0]["MessageAttributes"].items()}
    assert attributes["ERROR_CODE"] == "AccessDenied"
    assert "events.amazonaws.com is not authorized to perform: sqs:sendmessage" in attributes["ERROR_MESSAGE"]
    assert "EXHAUSTED_RETRY_CONDITION" not in attributes  # a refusal is not retried
    assert sqs.receive_message(QueueUrl=physical["StartQueue"]).get("Messages") is None


def test_a_state_machine_role_without_the_invoke_grant_fails_the_run(delivery_mistakes: LocalProcess) -> None:
    physical = stack_physical(delivery_mistakes)
    sfn = admin(delivery_mistakes, "stepfunctions")
    payload = {
        "file": {
            "bucket": physical["IngestBucket"],
            "key": "uploads/u/01ABCDEFGHJKMNPQRSTVWXYZ11",
            "version": "v",
            "ownerId": "u",
            "fileId": "01ABCDEFGHJKMNPQRSTVWXYZ11",
        }
    }
    sfn.start_execution(
        stateMachineArn=physical["ProcessUploadStateMachine"],
        name="no-record-grant",
        input=json.dumps(payload),
    )
    events = history(delivery_mistakes, "no-record-grant")
    assert events[-1]["type"] == "ExecutionFailed"
    failures = task_failures(events)
    assert failures
    assert {f["error"] for f in failures} == {"Lambda.AccessDeniedException"}
    role = physical["ProcessUploadStateMachineRole"]
    assert f":assumed-role/{role}/" in failures[0]["cause"]
    assert "is not authorized to perform: lambda:InvokeFunction on resource: " in failures[0]["cause"]
    assert "(Service: AWSLambda; Status Code: 403; Error Code: AccessDeniedException" in failures[0]["cause"]
    # A refusal is final: not retried like Lambda's service errors.
    assert len(failures) == 2  # "Mark processing", then "Record failure"
