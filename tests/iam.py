"""S3 answering as on AWS for a function's role: ungranted actions and unlistable missing objects get 403.

moto lets every caller do everything and answers 404 for any missing object. On AWS, S3 refuses an
action the caller's role does not grant, and answers a read of a missing object (HeadObject, GetObject,
the source of CopyObject) with 403 AccessDenied unless the role may also ``s3:ListBucket`` that bucket.
AWS documents that rule for a ListBucket grant; whether a grant limited by an ``s3:prefix`` condition
counts is not documented, so here only a grant that holds without any request context counts.

The roles are the template's, as provisioned into moto (intrinsics resolved), so the template is the
only place a grant is written. Only S3 is checked, and only the operations this project calls: an
operation missing from ``_ACCESS`` is refused loudly instead of being let through.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from botocore.awsrequest import AWSResponse
from moto.core.botocore_stubber import MockRawResponse

import common.aws
from common.storage import MISSING_CODES
from tests.stack import StackFixture

_CHECK = "filepipe-iam-check"


@dataclass(frozen=True)
class RolePolicy:
    """The statements of one role's policies; ``allows`` evaluates them as IAM does (a Deny wins)."""

    role_name: str
    statements: tuple[dict[str, Any], ...]

    def allows(self, action: str, resource: str, context: Mapping[str, str] | None = None) -> bool:
        allowed = False
        for statement in self.statements:
            if not _applies(statement, action, resource, context or {}):
                continue
            if statement["Effect"] == "Deny":
                return False
            allowed = True
        return allowed


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _matches(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM wildcards: ``*`` any run of characters, ``?`` one character."""
    regex = "".join(".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


def _applies(statement: dict[str, Any], action: str, resource: str, context: Mapping[str, str]) -> bool:
    unread = {"NotAction", "NotResource", "NotPrincipal"} & statement.keys()
    if unread:
        raise ValueError(f"the IAM check does not evaluate {sorted(unread)}: {statement}")
    if not any(_matches(pattern, action, ignore_case=True) for pattern in _as_list(statement["Action"])):
        return False
    if not any(_matches(pattern, resource) for pattern in _as_list(statement["Resource"])):
        return False
    return _conditions_hold(statement.get("Condition", {}), context)


def _conditions_hold(block: dict[str, dict[str, Any]], context: Mapping[str, str]) -> bool:
    """Every condition holds; a key absent from the request fails its condition (unless ...IfExists)."""
    for operator, tests in block.items():
        base = operator.removesuffix("IfExists")
        if base not in {"StringEquals", "StringLike", "ArnEquals", "ArnLike"}:
            raise ValueError(f"the IAM check does not evaluate the condition operator {operator}")
        for key, expected in tests.items():
            actual = context.get(key.lower())
            if actual is None:
                if base == operator:
                    return False
                continue
            if base.endswith("Like"):
                holds = any(_matches(pattern, actual) for pattern in _as_list(expected))
            else:
                holds = actual in _as_list(expected)
            if not holds:
                return False
    return True


def role_of(stack: StackFixture, logical_id: str) -> RolePolicy:
    """The role the template gives function ``logical_id``: its inline and attached policies."""
    iam = stack.client("iam")
    role_arn = stack.client("lambda").get_function_configuration(
        FunctionName=stack.function(logical_id).name
    )["Role"]
    name = role_arn.rsplit("/", 1)[-1]
    documents = [
        iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
        for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]
    ]
    for attached in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
        policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
        documents.append(
            iam.get_policy_version(PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])[
                "PolicyVersion"
            ]["Document"]
        )
    statements = tuple(statement for document in documents for statement in _as_list(document["Statement"]))
    return RolePolicy(name, statements)


def roles_of(stack: StackFixture) -> dict[str, RolePolicy]:
    return {logical_id: role_of(stack, logical_id) for logical_id in stack.stack.functions}


# ------------------------------------------------------------------ which grants an S3 call needs


@dataclass(frozen=True)
class Access:
    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Needs:
    """The grants one S3 call needs, and the bucket whose missing objects it reads (if any)."""

    accesses: tuple[Access, ...]
    reads_from: str | None = None


def _object(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


def _versioned(action: str, version: str | None) -> str:
    """A request naming a version is authorised as the Version action: s3:GetObject -> s3:GetObjectVersion."""
    return f"{action}Version" if version else action


def _read(params: dict[str, Any]) -> Needs:
    action = _versioned("s3:GetObject", params.get("VersionId"))
    return Needs((Access(action, _object(params["Bucket"], params["Key"])),), reads_from=params["Bucket"])


def _copy_source(source: Any) -> tuple[str, str, str | None]:
    if isinstance(source, dict):
        return source["Bucket"], source["Key"], source.get("VersionId")
    parsed = urlparse(str(source))
    bucket, key = unquote(parsed.path).lstrip("/").split("/", 1)
    return bucket, key, parse_qs(parsed.query).get("versionId", [None])[0]


def _copy(params: dict[str, Any]) -> Needs:
    bucket, key, version = _copy_source(params["CopySource"])
    return Needs(
        (
            Access(_versioned("s3:GetObject", version), _object(bucket, key)),
            Access("s3:PutObject", _object(params["Bucket"], params["Key"])),
        ),
        reads_from=bucket,
    )


def _on_object(action: str, *, versioned: bool = False) -> Callable[[dict[str, Any]], Needs]:
    def needs(params: dict[str, Any]) -> Needs:
        name = _versioned(action, params.get("VersionId")) if versioned else action
        return Needs((Access(name, _object(params["Bucket"], params["Key"])),))

    return needs


def _list(action: str) -> Callable[[dict[str, Any]], Needs]:
    def needs(params: dict[str, Any]) -> Needs:
        context = (("s3:prefix", params["Prefix"]),) if "Prefix" in params else ()
        return Needs((Access(action, f"arn:aws:s3:::{params['Bucket']}", context),))

    return needs


def _delete_many(params: dict[str, Any]) -> Needs:
    # S3 reports refused keys one by one inside a 200; refusing the whole call is stricter, and louder.
    return Needs(
        tuple(
            Access(
                _versioned("s3:DeleteObject", item.get("VersionId")), _object(params["Bucket"], item["Key"])
            )
            for item in params["Delete"]["Objects"]
        )
    )


_ACCESS: dict[str, Callable[[dict[str, Any]], Needs]] = {
    "HeadObject": _read,
    "GetObject": _read,
    "CopyObject": _copy,
    "UploadPartCopy": _copy,
    "PutObject": _on_object("s3:PutObject"),
    "CreateMultipartUpload": _on_object("s3:PutObject"),
    "UploadPart": _on_object("s3:PutObject"),
    "CompleteMultipartUpload": _on_object("s3:PutObject"),
    "AbortMultipartUpload": _on_object("s3:AbortMultipartUpload"),
    "ListParts": _on_object("s3:ListMultipartUploadParts"),
    "DeleteObject": _on_object("s3:DeleteObject", versioned=True),
    "GetObjectTagging": _on_object("s3:GetObjectTagging", versioned=True),
    "PutObjectTagging": _on_object("s3:PutObjectTagging", versioned=True),
    "DeleteObjects": _delete_many,
    "ListObjects": _list("s3:ListBucket"),
    "ListObjectsV2": _list("s3:ListBucket"),
    "ListObjectVersions": _list("s3:ListBucketVersions"),
}


# ------------------------------------------------------------------ the botocore hooks


def _can_list(role: RolePolicy, bucket: str) -> bool:
    return role.allows("s3:ListBucket", f"arn:aws:s3:::{bucket}")


def _refusal(operation: str, reason: str) -> dict[str, Any]:
    # A HEAD has no body, so S3's 403 reaches botocore as the bare status, as here.
    code = "403" if operation == "HeadObject" else "AccessDenied"
    return {
        "Error": {"Code": code, "Message": f"Access Denied ({reason})"},
        "ResponseMetadata": {"HTTPStatusCode": 403, "HTTPHeaders": {}},
    }


def answer_as_aws(client: Any, role: Callable[[], RolePolicy | None]) -> None:
    """Make ``client`` answer S3 calls as AWS answers ``role()``; calls while it returns None go unchecked."""

    def authorize(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        acting = role()
        if acting is None or context.get("is_presign_request"):
            return  # a presigned URL is authorised when it is used, not when it is signed
        if model.name not in _ACCESS:
            raise ValueError(f"tests/iam.py does not know which IAM actions S3 {model.name} needs")
        needs = _ACCESS[model.name](params)
        refused = [
            access
            for access in needs.accesses
            if not acting.allows(access.action, access.resource, dict(access.context))
        ]
        context[_CHECK] = (acting, needs, refused)

    def refuse(model: Any, context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if _CHECK not in context:
            return None
        acting, _needs, refused = context[_CHECK]
        if not refused:
            return None
        reason = f"{acting.role_name} has no {refused[0].action} on {refused[0].resource}"
        return AWSResponse("", 403, {}, MockRawResponse(b"")), _refusal(model.name, reason)

    def hide_missing(
        http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        if _CHECK not in context or http_response.status_code != 404:
            return
        acting, needs, _refused = context[_CHECK]
        code = parsed.get("Error", {}).get("Code")
        if needs.reads_from is None or code not in MISSING_CODES or _can_list(acting, needs.reads_from):
            return
        reason = f"missing object, and {acting.role_name} has no s3:ListBucket on {needs.reads_from}"
        parsed.clear()
        parsed.update(_refusal(model.name, reason))
        http_response.status_code = 403

    events = client.meta.events
    events.register("before-parameter-build.s3", authorize, unique_id=f"{_CHECK}-authorize")
    events.register("before-call.s3", refuse, unique_id=f"{_CHECK}-refuse")
    events.register("after-call.s3", hide_missing, unique_id=f"{_CHECK}-hide-missing")


def s3_as(stack: StackFixture, logical_id: str) -> Any:
    """A new S3 client of ``stack`` that answers as AWS answers function ``logical_id``'s role."""
    role = role_of(stack, logical_id)
    s3 = stack.client("s3")
    answer_as_aws(s3, lambda: role)
    return s3


_acting_function: ContextVar[RolePolicy | None] = ContextVar("acting_function", default=None)


@contextmanager
def acting_as(role: RolePolicy) -> Iterator[None]:
    """While inside, the S3 client handlers use (``common.aws.client``) answers as AWS answers ``role``.

    Per thread: moto runs parallel branches in threads, each invoking its own function. Calls made from
    threads a handler starts itself (the transfer manager's, for copies above 5 GiB) go unchecked.
    """
    answer_as_aws(common.aws.client("s3"), _acting_function.get)  # once per client: unique ids
    token = _acting_function.set(role)
    try:
        yield
    finally:
        _acting_function.reset(token)
