"""IAM policy evaluation as AWS documents it: deny first, wildcards, Not* elements, conditions, principals."""

from __future__ import annotations

from typing import Any

import pytest

from filepipe.local.iam import policy
from filepipe.local.iam.conditions import UnknownConditionOperator
from filepipe.local.iam.evaluation import decide
from filepipe.local.iam.patterns import ContextValue
from filepipe.local.iam.principals import anonymous, role_session, service

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/app-FunctionRole-Ab12"
BUCKET = "arn:aws:s3:::files"


def _policy(*statements: dict[str, Any]) -> policy.Policy:
    return policy.from_documents([{"Version": "2012-10-17", "Statement": list(statements)}])


def _role(*statements: dict[str, Any]) -> Any:
    return role_session(ACCOUNT, ROLE, "app-Function", _policy(*statements))


def _allows(statement: dict[str, Any], action: str, resource: str, **context: ContextValue) -> bool:
    keys = {key.replace("__", ":").lower(): value for key, value in context.items()}
    return _policy(statement).allows(action, resource, keys)


def test_actions_match_case_insensitively_with_wildcards_and_resources_case_sensitively() -> None:
    statement = {"Effect": "Allow", "Action": "S3:get*", "Resource": f"{BUCKET}/files/?/*"}
    assert _allows(statement, "s3:GetObjectVersion", f"{BUCKET}/files/a/b/c")
    assert not _allows(statement, "s3:PutObject", f"{BUCKET}/files/a/b")
    assert not _allows(statement, "s3:GetObject", f"{BUCKET}/files/ab/c")  # ? is one character
    assert not _allows(statement, "s3:GetObject", f"{BUCKET}/FILES/a/b")


def test_an_arn_pattern_matches_part_by_part_and_the_resource_part_may_hold_colons() -> None:
    statement = {
        "Effect": "Allow",
        "Action": "lambda:InvokeFunction",
        "Resource": "arn:aws:lambda:*:*:function:app-*",
    }
    assert _allows(
        statement, "lambda:InvokeFunction", f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:app-f:live"
    )
    assert not _allows(statement, "lambda:InvokeFunction", f"arn:aws:lambda:eu-west-1:{ACCOUNT}:layer:app-f")


def test_not_action_and_not_resource_cover_everything_else() -> None:
    everything_but_delete = {"Effect": "Allow", "NotAction": "s3:Delete*", "Resource": "*"}
    assert _allows(everything_but_delete, "s3:PutObject", f"{BUCKET}/k")
    assert not _allows(everything_but_delete, "s3:DeleteObject", f"{BUCKET}/k")
    outside_files = {"Effect": "Allow", "Action": "s3:*", "NotResource": f"{BUCKET}/*"}
    assert _allows(outside_files, "s3:GetObject", "arn:aws:s3:::other/k")
    assert not _allows(outside_files, "s3:GetObject", f"{BUCKET}/k")


def test_an_explicit_deny_wins_over_any_allow_in_either_policy() -> None:
    role = _role({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})
    bucket = _policy(
        {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": [BUCKET, f"{BUCKET}/*"]},
    )
    decision = decide(role, "s3:GetObject", f"{BUCKET}/k", {}, bucket)
    assert (decision.allowed, decision.reason) == (False, "with an explicit deny in a resource-based policy")
    denied_to_self = _role(
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "*"},
    )
    decision = decide(denied_to_self, "s3:GetObject", f"{BUCKET}/k", {})
    assert (decision.allowed, decision.reason) == (False, "with an explicit deny in an identity-based policy")


def test_without_an_allow_the_refusal_names_the_policy_type_that_could_have_allowed() -> None:
    decision = decide(_role(), "dynamodb:PutItem", f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/t", {})
    assert decision.reason == "because no identity-based policy allows the dynamodb:PutItem action"
    events = service("events.amazonaws.com", ACCOUNT, "arn:aws:events:us-east-1:123456789012:rule/r")
    decision = decide(events, "sqs:SendMessage", f"arn:aws:sqs:us-east-1:{ACCOUNT}:q", {})
    assert decision.reason == "because no resource-based policy allows the sqs:SendMessage action"


TLS_ONLY = {
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": [BUCKET, f"{BUCKET}/*"],
    "Condition": {"Bool": {"aws:SecureTransport": False}},
}


def test_a_tls_only_deny_refuses_plain_http_only() -> None:
    role = _role({"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{BUCKET}/*"})
    bucket = _policy(TLS_ONLY)
    assert decide(role, "s3:GetObject", f"{BUCKET}/k", {"aws:securetransport": "true"}, bucket).allowed
    assert not decide(role, "s3:GetObject", f"{BUCKET}/k", {"aws:securetransport": "false"}, bucket).allowed


@pytest.mark.parametrize(
    ("operator", "expected", "context", "holds"),
    [
        ("StringEquals", "a", {"k": "a"}, True),
        ("StringEquals", "a", {"k": "A"}, False),
        ("StringEquals", "a", {}, False),  # a key the request lacks fails the condition
        ("StringEqualsIfExists", "a", {}, True),
        ("StringNotEquals", "a", {}, True),  # ...except for negated operators
        ("StringNotEquals", "a", {"k": "a"}, False),
        ("StringEqualsIgnoreCase", "a", {"k": "A"}, True),
        ("StringLike", "up*/?", {"k": "uploads/x"}, True),
        ("StringNotLike", "up*", {"k": "down"}, True),
        ("ArnLike", "arn:aws:events:*:*:rule/r*", {"k": "arn:aws:events:us-east-1:1:rule/rule"}, True),
        ("ArnEquals", "arn:aws:events:*:*:rule/r", {"k": "arn:aws:events:us-east-1:1:rule/other"}, False),
        ("ArnNotLike", "arn:aws:events:*:*:rule/r", {"k": "arn:aws:events:us-east-1:1:rule/other"}, True),
        ("NumericLessThan", "10", {"k": "9"}, True),
        ("NumericGreaterThanEquals", "10", {"k": "9"}, False),
        ("DateGreaterThan", "2020-01-01T00:00:00Z", {"k": "2021-06-01T00:00:00Z"}, True),
        ("DateLessThan", "2020-01-01T00:00:00Z", {"k": "1700000000"}, False),
        ("Bool", "true", {"k": "true"}, True),
        ("Bool", False, {"k": "true"}, False),
        ("IpAddress", "127.0.0.0/8", {"k": "127.0.0.1"}, True),
        ("NotIpAddress", "10.0.0.0/8", {"k": "127.0.0.1"}, True),
        ("BinaryEquals", "QUJD", {"k": "QUJD"}, True),
        ("Null", "true", {}, True),
        ("Null", "false", {}, False),
        ("ForAnyValue:StringEquals", "b", {"k": ("a", "b")}, True),
        ("ForAllValues:StringEquals", "b", {"k": ("a", "b")}, False),
        ("ForAllValues:StringEquals", ["a", "b"], {"k": ("a", "b")}, True),
        ("ForAllValues:StringEquals", "b", {}, True),
        ("ForAnyValue:StringEquals", "b", {}, False),
    ],
)
def test_condition_operators(
    operator: str, expected: Any, context: dict[str, ContextValue], holds: bool
) -> None:
    statement = {
        "Effect": "Allow",
        "Action": "x:Y",
        "Resource": "*",
        "Condition": {operator: {"K": expected}},
    }
    assert _policy(statement).allows("x:Y", "r", context) is holds


def test_every_key_and_every_operator_of_a_block_must_hold_and_any_value_of_a_key_may() -> None:
    statement = {
        "Effect": "Allow",
        "Action": "ses:SendEmail",
        "Resource": "*",
        "Condition": {
            "StringEquals": {
                "ses:FromAddress": ["a@example.com", "b@example.com"],
                "aws:SourceAccount": ACCOUNT,
            },
            "Bool": {"aws:SecureTransport": "true"},
        },
    }
    context: dict[str, ContextValue] = {
        "ses:fromaddress": "b@example.com",
        "aws:sourceaccount": ACCOUNT,
        "aws:securetransport": "true",
    }
    assert _policy(statement).allows("ses:SendEmail", "*", context)
    assert not _policy(statement).allows("ses:SendEmail", "*", {**context, "aws:securetransport": "false"})
    assert not _policy(statement).allows(
        "ses:SendEmail", "*", {**context, "ses:fromaddress": "c@example.com"}
    )


def test_policy_variables_take_the_request_context_and_a_missing_one_matches_nothing() -> None:
    statement = {
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": f"{BUCKET}/${{aws:username}}/${{*}}",
    }
    assert _allows(statement, "s3:GetObject", f"{BUCKET}/ana/*", aws__username="ana")
    assert not _allows(
        statement, "s3:GetObject", f"{BUCKET}/ana/x", aws__username="ana"
    )  # ${*} is a literal *
    assert not _allows(statement, "s3:GetObject", f"{BUCKET}/ana/*")


def test_a_resource_policy_names_services_roles_and_sessions_and_the_account_only_delegates() -> None:
    queue = f"arn:aws:sqs:us-east-1:{ACCOUNT}:start"
    rule = f"arn:aws:events:us-east-1:{ACCOUNT}:rule/uploads"
    queue_policy = _policy(
        {
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue,
            "Condition": {"ArnEquals": {"aws:SourceArn": rule}},
        }
    )
    assert decide(
        service("events.amazonaws.com", ACCOUNT, rule),
        "sqs:SendMessage",
        queue,
        {"aws:sourcearn": rule},
        queue_policy,
    ).allowed
    other_rule = f"{rule}-other"
    assert not decide(
        service("events.amazonaws.com", ACCOUNT, other_rule),
        "sqs:SendMessage",
        queue,
        {"aws:sourcearn": other_rule},
        queue_policy,
    ).allowed
    assert not decide(
        service("sns.amazonaws.com", ACCOUNT), "sqs:SendMessage", queue, {}, queue_policy
    ).allowed

    named_role = _policy(
        {"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "sqs:*", "Resource": queue}
    )
    assert decide(_role(), "sqs:SendMessage", queue, {}, named_role).allowed
    account = _policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "sqs:*",
            "Resource": queue,
        }
    )
    assert not decide(_role(), "sqs:SendMessage", queue, {}, account).allowed  # the account delegates to IAM
    assert not decide(anonymous(ACCOUNT), "sqs:SendMessage", queue, {}, account).allowed


def test_a_key_policy_must_allow_and_an_identity_policy_counts_only_when_it_delegates() -> None:
    key = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234"
    role = _role({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"})
    services_only = _policy(
        {
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": "kms:*",
            "Resource": "*",
        }
    )
    delegating = _policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    )
    assert not decide(role, "kms:Decrypt", key, {}, services_only, resource_policy_required=True).allowed
    assert decide(role, "kms:Decrypt", key, {}, delegating, resource_policy_required=True).allowed
    assert not decide(_role(), "kms:Decrypt", key, {}, delegating, resource_policy_required=True).allowed


def test_a_permissions_boundary_only_narrows() -> None:
    boundary = _policy({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})
    role = role_session(
        ACCOUNT, ROLE, "s", _policy({"Effect": "Allow", "Action": "s3:*", "Resource": "*"}), (boundary,)
    )
    assert decide(role, "s3:GetObject", f"{BUCKET}/k", {}).allowed
    assert not decide(role, "s3:PutObject", f"{BUCKET}/k", {}).allowed


def test_a_policy_with_an_operator_iam_does_not_have_is_refused_when_read() -> None:
    with pytest.raises(UnknownConditionOperator):
        _policy({"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringSorta": {"k": "v"}}})


def test_not_principal_covers_everyone_it_does_not_name() -> None:
    bucket = _policy(
        {"Effect": "Deny", "NotPrincipal": {"AWS": ROLE}, "Action": "s3:*", "Resource": f"{BUCKET}/*"},
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"{BUCKET}/*"},
    )
    assert decide(_role(), "s3:GetObject", f"{BUCKET}/k", {}, bucket).allowed
    other = role_session(ACCOUNT, f"arn:aws:iam::{ACCOUNT}:role/other", "s", _policy())
    assert not decide(other, "s3:GetObject", f"{BUCKET}/k", {}, bucket).allowed
