"""Lambda: REST paths to operations, function ARNs (qualified or not) and the function's own policy."""

from __future__ import annotations

import re
from urllib.parse import unquote

from filepipe.local.iam import resource_policies
from filepipe.local.iam.calls import Access, Call, Needs, UnknownOperation

_FUNCTION = r"(?P<name>[^/]+)"
# (method, path, operation, action); the action is None when it is "lambda:" + the operation.
_ROUTES: tuple[tuple[str, re.Pattern[str], str, str | None], ...] = tuple(
    (method, re.compile(f"^{path}/?$"), operation, action)
    for method, path, operation, action in (
        ("POST", f"/2015-03-31/functions/{_FUNCTION}/invocations", "Invoke", "lambda:InvokeFunction"),
        ("POST", f"/2014-11-13/functions/{_FUNCTION}/invoke-async", "InvokeAsync", "lambda:InvokeFunction"),
        ("GET", f"/2015-03-31/functions/{_FUNCTION}/configuration", "GetFunctionConfiguration", None),
        ("PUT", f"/2015-03-31/functions/{_FUNCTION}/configuration", "UpdateFunctionConfiguration", None),
        ("PUT", f"/2015-03-31/functions/{_FUNCTION}/code", "UpdateFunctionCode", None),
        ("GET", f"/2015-03-31/functions/{_FUNCTION}/policy", "GetPolicy", None),
        ("POST", f"/2015-03-31/functions/{_FUNCTION}/policy", "AddPermission", None),
        ("DELETE", f"/2015-03-31/functions/{_FUNCTION}/policy/[^/]+", "RemovePermission", None),
        ("GET", f"/2015-03-31/functions/{_FUNCTION}/versions", "ListVersionsByFunction", None),
        ("GET", f"/2019-09-30/functions/{_FUNCTION}/concurrency", "GetFunctionConcurrency", None),
        ("PUT", f"/2017-10-31/functions/{_FUNCTION}/concurrency", "PutFunctionConcurrency", None),
        ("DELETE", f"/2017-10-31/functions/{_FUNCTION}/concurrency", "DeleteFunctionConcurrency", None),
        ("GET", f"/2015-03-31/functions/{_FUNCTION}", "GetFunction", None),
        ("DELETE", f"/2015-03-31/functions/{_FUNCTION}", "DeleteFunction", None),
        ("GET", "/2015-03-31/functions", "ListFunctions", None),
        ("POST", "/2015-03-31/functions", "CreateFunction", None),
        ("GET", "/2015-03-31/event-source-mappings", "ListEventSourceMappings", None),
        ("POST", "/2015-03-31/event-source-mappings", "CreateEventSourceMapping", None),
        ("GET", "/2015-03-31/event-source-mappings/(?P<mapping>[^/]+)", "GetEventSourceMapping", None),
        ("PUT", "/2015-03-31/event-source-mappings/(?P<mapping>[^/]+)", "UpdateEventSourceMapping", None),
        ("DELETE", "/2015-03-31/event-source-mappings/(?P<mapping>[^/]+)", "DeleteEventSourceMapping", None),
        ("GET", "/2016-08-19/account-settings", "GetAccountSettings", None),
    )
)


def function_arn(region: str, account: str, name_or_arn: str, qualifier: str | None = None) -> str:
    """The ARN IAM evaluates for a function named by name, partial ARN or ARN (with its qualifier)."""
    text = unquote(name_or_arn)
    name = text.split(":function:", 1)[1] if ":function:" in text else text
    if qualifier and ":" not in name:
        name = f"{name}:{qualifier}"
    return f"arn:aws:lambda:{region}:{account}:function:{name}"


def function_name(arn: str) -> str:
    return arn.split(":function:", 1)[1].split(":", 1)[0]


def invoke_access(region: str, account: str, name_or_arn: str, qualifier: str | None = None) -> Access:
    """lambda:InvokeFunction on a function, its own policy included (what API Gateway, EventBridge use)."""
    arn = function_arn(region, account, name_or_arn, qualifier)
    name = function_name(arn)
    return Access(
        "lambda:InvokeFunction", arn, policy=lambda: resource_policies.function(account, region, name)
    )


def invoke_call(account: str, region: str) -> Call:
    """An Invoke as the runtime makes it without a request (a task, a route, a schedule): for refusals."""
    path = "/2015-03-31/functions/function/invocations"
    return Call("lambda", "Invoke", {}, account, region, path=path, protocol="rest-json")


def needs(call: Call) -> Needs:
    for method, path, operation, action in _ROUTES:
        if method != call.method:
            continue
        matched = path.match(call.path)
        if matched is None:
            continue
        call.operation = operation
        groups = matched.groupdict()
        if "name" in groups:
            qualifiers = call.query.get("Qualifier")
            qualifier = qualifiers[0] if qualifiers else None
            access = invoke_access(call.region, call.account, groups["name"], qualifier)
            return Needs((Access(action or f"lambda:{operation}", access.resource, policy=access.policy),))
        if "mapping" in groups:
            resource = call.arn("lambda", f"event-source-mapping:{groups['mapping']}")
            return Needs((Access(f"lambda:{operation}", resource),))
        return Needs((Access(action or f"lambda:{operation}", "*"),))
    raise UnknownOperation(f"Lambda {call.method} {call.path}")
