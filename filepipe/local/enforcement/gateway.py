"""API Gateway's invocations of an HTTP API's functions, decided on each function's own policy.

API Gateway invokes a route's function as ``apigateway.amazonaws.com`` with the route's execute-api ARN
as aws:SourceArn; without an ``AWS::Lambda::Permission`` that lets it, the API answers 500 and logs
"Invalid permissions on Lambda function".
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from filepipe.local.enforcement.enforcer import Enforcer, Refused
from filepipe.local.iam.principals import service
from filepipe.local.services.awslambda.access import function_name, invoke_access, invoke_call
from filepipe.local.services.awslambda.invoke import InvokeResult

log = logging.getLogger("filepipe.local.iam")

Invoke = Callable[[str, bytes], InvokeResult]
_REFUSED = InvokeResult(b'{"message": "Internal Server Error"}', "Unhandled")


def source_arn(account: str, region: str, event: dict[str, Any]) -> str:
    """The execute-api ARN API Gateway invokes with: api/stage/METHOD/path."""
    context = event.get("requestContext") or {}
    method = (context.get("http") or {}).get("method") or context.get("httpMethod") or ""
    path = event.get("rawPath") or event.get("path") or "/"
    stage = context.get("stage") or "$default"
    return f"arn:aws:execute-api:{region}:{account}:{context.get('apiId', '')}/{stage}/{method}{path}"


def refusal(enforcer: Enforcer, function_arn: str, source: str, region: str) -> str | None:
    """None when API Gateway may invoke the function for this route; else why not (the function's policy)."""
    principal = service("apigateway.amazonaws.com", enforcer.account, source)
    access = invoke_access(region, enforcer.account, function_name(function_arn))
    try:
        enforcer.require(principal, invoke_call(enforcer.account, region), access)
    except Refused as refused:
        return refused.text
    return None


def authorized(invoke: Invoke, enforcer: Enforcer, region: str) -> Invoke:
    """``invoke`` behind API Gateway's permission check."""

    def call(function_arn: str, payload: bytes) -> InvokeResult:
        try:
            event = json.loads(payload)
        except ValueError:
            event = {}
        arn = source_arn(enforcer.account, region, event if isinstance(event, dict) else {})
        refused = refusal(enforcer, function_arn, arn, region)
        if refused is not None:
            log.error(
                "Execution failed due to configuration error: Invalid permissions on Lambda function (%s)",
                refused,
            )
            return _REFUSED
        return invoke(function_arn, payload)

    return call
