"""The local AWS endpoint names each request it answers as ``service Action``, whatever its protocol."""

from __future__ import annotations

import io
from typing import Any

import pytest

from filepipe.local.endpoint import request_label

_SIGNED = "AWS4-HMAC-SHA256 Credential=AKIDLOCAL/20261122/us-east-1/{service}/aws4_request, Signature=0"


def _signed(service: str, **environ: Any) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/",
        "HTTP_AUTHORIZATION": _SIGNED.format(service=service),
    } | environ


@pytest.mark.parametrize(
    ("environ", "label"),
    [
        (_signed("dynamodb", HTTP_X_AMZ_TARGET="DynamoDB_20120810.UpdateItem"), "dynamodb UpdateItem"),
        (_signed("sqs", HTTP_X_AMZ_TARGET="AmazonSQS.ReceiveMessage"), "sqs ReceiveMessage"),
        (_signed("s3", REQUEST_METHOD="HEAD", PATH_INFO="/bucket/key"), "s3 HEAD"),
        (_signed("lambda", PATH_INFO="/2015-03-31/functions/Validate/invocations"), "lambda Invoke"),
        (
            _signed("sts", REQUEST_METHOD="GET", QUERY_STRING="Action=GetCallerIdentity&Version=2011-06-15"),
            "sts GetCallerIdentity",
        ),
        (
            {
                "REQUEST_METHOD": "GET",
                "PATH_INFO": "/bucket/files/a/original",
                "QUERY_STRING": "X-Amz-Algorithm=AWS4-HMAC-SHA256"
                "&X-Amz-Credential=AKIDLOCAL%2F20261122%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=0",
            },
            "s3 GET",
        ),
        (
            {
                "REQUEST_METHOD": "POST",
                "PATH_INFO": "/",
                "HTTP_X_AMZ_TARGET": "AWSCognitoIdentityProviderService.InitiateAuth",
            },
            "cognito-idp InitiateAuth",
        ),
        (
            {
                "REQUEST_METHOD": "POST",
                "PATH_INFO": "/ingest",
                "CONTENT_TYPE": "multipart/form-data; boundary=b",
            },
            "s3 PostObject",
        ),
        ({"REQUEST_METHOD": "GET", "PATH_INFO": "/us-east-1_x/.well-known/jwks.json"}, "unsigned GET"),
    ],
)
def test_each_protocol_is_named_by_service_and_action(environ: dict[str, Any], label: str) -> None:
    assert request_label(environ) == label


def test_a_form_posted_action_is_read_and_the_body_left_for_moto() -> None:
    body = b"Action=SendEmail&Version=2010-12-01&Source=a%40example.com"
    environ = _signed(
        "ses",
        CONTENT_TYPE="application/x-www-form-urlencoded; charset=utf-8",
        CONTENT_LENGTH=str(len(body)),
        **{"wsgi.input": io.BytesIO(body)},
    )
    assert request_label(environ) == "ses SendEmail"
    assert environ["wsgi.input"].read() == body
