"""S3 answering as on AWS for a function's role: ungranted actions and unlistable missing objects get 403.

moto lets every caller do everything and answers 404 for any missing object. On AWS, S3 refuses an
action the caller's role does not grant, and answers a read of a missing object (HeadObject, GetObject,
the source of CopyObject) with 403 AccessDenied unless the role may also ``s3:ListBucket`` that bucket.
AWS documents that rule for a ListBucket grant; whether a grant limited by an ``s3:prefix`` condition
counts is not documented, so here only a grant that holds without any request context counts.

The evaluation and the S3 operation -> IAM action mapping are the local runtime's own
(``filepipe.local.iam``): this hook only applies them to a botocore client, for tests that run handlers
in-process. The roles are the template's, as provisioned into moto (intrinsics resolved), so the
template is the only place a grant is written. Only S3 is checked here; an operation the mapping does not
know is refused loudly instead of being let through.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse
from moto.core.botocore_stubber import MockRawResponse

import common.aws
from common.storage import MISSING_CODES
from filepipe.local.iam import policy as iam_policy
from filepipe.local.iam.calls import UnknownOperation
from filepipe.local.services.s3.access import S3Rules
from tests.stack import StackFixture

_CHECK = "filepipe-iam-check"
_S3 = S3Rules()  # bucket policies are the runtime's to apply; here the roles alone answer


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class RolePolicy:
    """The statements of one role's policies; ``allows`` evaluates them as IAM does (a Deny wins)."""

    role_name: str
    statements: tuple[dict[str, Any], ...]
    _policy: iam_policy.Policy = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        compiled = iam_policy.from_documents([{"Statement": list(self.statements)}])
        object.__setattr__(self, "_policy", compiled)

    def allows(self, action: str, resource: str, context: Mapping[str, Any] | None = None) -> bool:
        return self._policy.allows(action, resource, {k.lower(): v for k, v in (context or {}).items()})


def role_of(stack: StackFixture, logical_id: str) -> RolePolicy:
    """The role the template gives function ``logical_id``: its inline and attached policies."""
    return _role_of(stack, logical_id, stack.client("iam"), stack.client("lambda"))


def _role_of(stack: StackFixture, logical_id: str, iam: Any, functions: Any) -> RolePolicy:
    role_arn = functions.get_function_configuration(FunctionName=stack.function(logical_id).name)["Role"]
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
    # Two clients for all the functions: making one costs about as much as reading a role.
    iam, functions = stack.client("iam"), stack.client("lambda")
    return {logical_id: _role_of(stack, logical_id, iam, functions) for logical_id in stack.stack.functions}


# ------------------------------------------------------------------ the botocore hooks


def _can_list(role: RolePolicy, bucket: str) -> bool:
    # The runtime's rule: a listing of the bucket without any request context (no s3:prefix).
    listing = _S3.needs("ListObjectsV2", {"Bucket": bucket}).accesses[0]
    return role.allows(listing.action, listing.resource, listing.context)


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
        try:
            needs = _S3.needs(model.name, params)
        except UnknownOperation as error:
            raise ValueError(f"tests/iam.py does not know which IAM actions S3 {model.name} needs") from error
        refused = [a for a in needs.accesses if not acting.allows(a.action, a.resource, a.context)]
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
