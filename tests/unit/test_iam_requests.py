"""Requests to the IAM actions and resources AWS authorises them as, service by service."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlencode

import pytest
from werkzeug.test import EnvironBuilder

from filepipe.local.enforcement.rules import rules_for
from filepipe.local.iam.calls import Call, UnknownOperation
from filepipe.local.iam.wire import parse, signature
from filepipe.local.services.s3.access import S3Rules

ACCOUNT = "123456789012"
REGION = "eu-west-1"
KEY = "ASIAEXAMPLEEXAMPLE01"


def _environ(service: str, method: str = "POST", path: str = "/", **options: Any) -> dict[str, Any]:
    credential = f"{KEY}/20260101/{REGION}/{service}/aws4_request"
    headers = [
        ("Authorization", f"AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders=host, Signature=0")
    ]
    headers += list(options.pop("headers", {}).items())
    return EnvironBuilder(path=path, method=method, headers=headers, **options).get_environ()


def _accesses(environ: dict[str, Any]) -> list[tuple[str, str]]:
    signed = signature(environ)
    assert signed is not None
    assert signed.service is not None
    call = parse(environ, signed.service, ACCOUNT, REGION, signed.presigned)
    needs = S3Rules().call_needs(call) if signed.service == "s3" else rules_for(signed.service)(call)
    return [(access.action, access.resource) for access in needs.accesses]


def _json(service: str, target: str, body: dict[str, Any]) -> dict[str, Any]:
    return _environ(
        service,
        headers={"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.0"},
        data=json.dumps(body),
    )


@pytest.mark.parametrize(
    ("method", "path", "query", "headers", "expected"),
    [
        ("GET", "/b/k", "", {}, ("s3:GetObject", "arn:aws:s3:::b/k")),
        ("HEAD", "/b/a/b%20c", "versionId=v1", {}, ("s3:GetObjectVersion", "arn:aws:s3:::b/a/b c")),
        ("GET", "/b/k", "tagging&versionId=v", {}, ("s3:GetObjectVersionTagging", "arn:aws:s3:::b/k")),
        ("PUT", "/b/k", "", {}, ("s3:PutObject", "arn:aws:s3:::b/k")),
        ("PUT", "/b/k", "partNumber=1&uploadId=u", {}, ("s3:PutObject", "arn:aws:s3:::b/k")),
        ("POST", "/b/k", "uploads", {}, ("s3:PutObject", "arn:aws:s3:::b/k")),
        ("GET", "/b/k", "uploadId=u", {}, ("s3:ListMultipartUploadParts", "arn:aws:s3:::b/k")),
        ("DELETE", "/b/k", "uploadId=u", {}, ("s3:AbortMultipartUpload", "arn:aws:s3:::b/k")),
        ("DELETE", "/b/k", "versionId=v", {}, ("s3:DeleteObjectVersion", "arn:aws:s3:::b/k")),
        ("GET", "/b", "list-type=2&prefix=uploads/", {}, ("s3:ListBucket", "arn:aws:s3:::b")),
        ("GET", "/b", "versions", {}, ("s3:ListBucketVersions", "arn:aws:s3:::b")),
        ("HEAD", "/b", "", {}, ("s3:ListBucket", "arn:aws:s3:::b")),
        ("GET", "/b", "cors", {}, ("s3:GetBucketCORS", "arn:aws:s3:::b")),
        ("PUT", "/b", "policy", {}, ("s3:PutBucketPolicy", "arn:aws:s3:::b")),
        ("GET", "/", "", {}, ("s3:ListAllMyBuckets", "*")),
    ],
)
def test_s3_rest_requests(
    method: str, path: str, query: str, headers: dict[str, str], expected: tuple[str, str]
) -> None:
    environ = _environ("s3", method, path, query_string=query, headers=headers)
    assert _accesses(environ) == [expected]


def test_an_s3_copy_reads_its_source_and_writes_its_destination_and_tags_and_acls_are_their_own() -> None:
    copy = _environ("s3", "PUT", "/dst/k", headers={"x-amz-copy-source": "/src/a%20b?versionId=v"})
    assert _accesses(copy) == [
        ("s3:GetObjectVersion", "arn:aws:s3:::src/a b"),
        ("s3:PutObject", "arn:aws:s3:::dst/k"),
    ]
    tagged = _environ("s3", "PUT", "/b/k", headers={"x-amz-tagging": "a=b", "x-amz-acl": "private"})
    assert _accesses(tagged) == [
        ("s3:PutObject", "arn:aws:s3:::b/k"),
        ("s3:PutObjectTagging", "arn:aws:s3:::b/k"),
        ("s3:PutObjectAcl", "arn:aws:s3:::b/k"),
    ]
    assert [
        a.action
        for a in S3Rules().needs("PostObject", {"Bucket": "b", "Key": "k", "Tagging": "<T/>"}).accesses
    ] == [
        "s3:PutObject",
        "s3:PutObjectTagging",
    ]


def test_s3_listing_carries_its_prefix_and_a_read_names_the_bucket_its_missing_objects_are_in() -> None:
    call = Call(
        "s3",
        "",
        {},
        ACCOUNT,
        REGION,
        method="GET",
        path="/b",
        query={"prefix": ["uploads/"], "list-type": ["2"]},
    )
    [listing] = S3Rules().call_needs(call).accesses
    assert listing.context["s3:prefix"] == "uploads/"
    read = S3Rules().needs(
        "CopyObject", {"Bucket": "dst", "Key": "k", "CopySource": {"Bucket": "src", "Key": "a"}}
    )
    assert read.reads_from == "src"


def test_an_operation_the_rules_cannot_name_is_refused() -> None:
    with pytest.raises(UnknownOperation):
        _accesses(_environ("s3", "POST", "/b/k", query_string="restore"))
    with pytest.raises(UnknownOperation):
        _accesses(_environ("lambda", "GET", "/2021-10-31/functions/f/url"))


def test_dynamodb_tables_indexes_and_transactions() -> None:
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/files"
    query = _json("dynamodb", "DynamoDB_20120810.Query", {"TableName": "files", "IndexName": "gsi1"})
    assert _accesses(query) == [("dynamodb:Query", f"{table}/index/gsi1")]
    transaction = _json(
        "dynamodb",
        "DynamoDB_20120810.TransactWriteItems",
        {"TransactItems": [{"Put": {"TableName": "files"}}, {"ConditionCheck": {"TableName": "files"}}]},
    )
    assert _accesses(transaction) == [("dynamodb:PutItem", table), ("dynamodb:ConditionCheckItem", table)]


def test_sqs_queues_from_urls_and_batches_as_their_single_actions() -> None:
    body = {"QueueUrl": f"http://127.0.0.1:1/{ACCOUNT}/start", "Entries": []}
    batch = _json("sqs", "AmazonSQS.SendMessageBatch", body)
    assert _accesses(batch) == [("sqs:SendMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:start")]


def test_step_functions_events_and_lambda_resources() -> None:
    machine = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:m"
    assert _accesses(_json("states", "AWSStepFunctions.StartExecution", {"stateMachineArn": machine})) == [
        ("states:StartExecution", machine)
    ]
    put = _json("events", "AWSEvents.PutEvents", {"Entries": [{"EventBusName": "bus", "Source": "filepipe"}]})
    assert _accesses(put) == [("events:PutEvents", f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/bus")]
    invoke = _environ("lambda", "POST", "/2015-03-31/functions/f/invocations", query_string="Qualifier=live")
    assert _accesses(invoke) == [
        ("lambda:InvokeFunction", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:f:live")
    ]
    by_arn = _environ(
        "lambda",
        "POST",
        f"/2015-03-31/functions/arn%3Aaws%3Alambda%3A{REGION}%3A{ACCOUNT}%3Afunction%3Ag/invocations",
    )
    assert _accesses(by_arn) == [("lambda:InvokeFunction", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:g")]


def test_ses_sends_on_the_sender_and_every_recipient_identity() -> None:
    form = {
        "Action": "SendEmail",
        "Source": "Filepipe <filepipe@example.com>",
        "Destination.ToAddresses.member.1": "owner@example.com",
        "Destination.CcAddresses.member.1": "team@example.com",
    }
    environ = _environ("ses", data=urlencode(form), content_type="application/x-www-form-urlencoded")
    identity = f"arn:aws:ses:{REGION}:{ACCOUNT}:identity"
    assert _accesses(environ) == [
        ("ses:SendEmail", f"{identity}/filepipe@example.com"),
        ("ses:SendEmail", f"{identity}/owner@example.com"),
        ("ses:SendEmail", f"{identity}/team@example.com"),
    ]
    raw = base64.b64encode(b"From: a@example.com\r\nTo: b@example.com\r\nSubject: s\r\n\r\nbody").decode()
    environ = _environ(
        "ses",
        data=urlencode({"Action": "SendRawEmail", "RawMessage.Data": raw}),
        content_type="application/x-www-form-urlencoded",
    )
    assert [resource for _, resource in _accesses(environ)] == [
        f"{identity}/a@example.com",
        f"{identity}/b@example.com",
    ]
    v2 = _environ(
        "ses",
        "POST",
        "/v2/email/outbound-emails",
        json={"FromEmailAddress": "a@example.com", "Destination": {"ToAddresses": ["b@example.com"]}},
    )
    assert _accesses(v2) == [
        ("ses:SendEmail", f"{identity}/a@example.com"),
        ("ses:SendEmail", f"{identity}/b@example.com"),
    ]


def test_a_presigned_url_is_signed_by_its_query_credential() -> None:
    credential = f"{KEY}/20260101/{REGION}/s3/aws4_request"
    environ = EnvironBuilder(
        path="/b/k", query_string=urlencode({"X-Amz-Credential": credential})
    ).get_environ()
    signed = signature(environ)
    assert signed is not None
    assert (signed.access_key, signed.service, signed.presigned) == (KEY, "s3", True)
    call = parse(environ, "s3", ACCOUNT, REGION, presigned=True)
    [read] = S3Rules().call_needs(call).accesses
    assert read.context["s3:authtype"] == "REST-QUERY-STRING"
