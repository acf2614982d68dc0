"""Who makes a request: a role's session, a user, a service acting for a resource, or nobody signed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from filepipe.local.iam.patterns import ContextValue
from filepipe.local.iam.policy import EMPTY, Policy, from_documents

Kind = Literal["role", "user", "service", "anonymous", "administrator"]
_NO_CONTEXT: MappingProxyType[str, ContextValue] = MappingProxyType({})


@dataclass(frozen=True)
class Principal:
    """A caller whose requests are evaluated.

    ``identity`` is what its identity-based policies allow; ``limits`` are policies that can only take
    permissions away (a permissions boundary, a session policy): each must allow as well.
    """

    kind: Kind
    arn: str  # how AWS names the caller in a refusal: arn:aws:sts::123456789012:assumed-role/Role/Session
    account: str
    names: frozenset[str] = frozenset()  # ARNs a resource policy may name it by
    service: str | None = None
    identity: Policy = EMPTY
    limits: tuple[Policy, ...] = ()
    context: Mapping[str, ContextValue] = field(default_factory=lambda: _NO_CONTEXT)  # its aws:* keys

    @property
    def has_identity_policies(self) -> bool:
        return self.kind in ("role", "user", "administrator")


def role_session(
    account: str,
    role_arn: str,
    session: str,
    identity: Policy,
    limits: tuple[Policy, ...] = (),
    role_id: str = "",
) -> Principal:
    """A session of a role: a function's, the state machine's, a schedule's or a rule target's."""
    role_name = role_arn.rsplit("/", 1)[-1]
    session_arn = f"arn:aws:sts::{account}:assumed-role/{role_name}/{session}"
    context: dict[str, ContextValue] = {
        "aws:principalarn": role_arn,
        "aws:principalaccount": account,
        "aws:principaltype": "AssumedRole",
        "aws:userid": f"{role_id or role_name}:{session}",
    }
    return Principal(
        kind="role",
        arn=session_arn,
        account=account,
        names=frozenset({session_arn, role_arn}),
        identity=identity,
        limits=limits,
        context=MappingProxyType(context),
    )


def user(account: str, user_arn: str, identity: Policy, limits: tuple[Policy, ...] = ()) -> Principal:
    context: dict[str, ContextValue] = {
        "aws:principalarn": user_arn,
        "aws:principalaccount": account,
        "aws:principaltype": "User",
        "aws:username": user_arn.rsplit("/", 1)[-1],
    }
    return Principal(
        kind="user",
        arn=user_arn,
        account=account,
        names=frozenset({user_arn}),
        identity=identity,
        limits=limits,
        context=MappingProxyType(context),
    )


def service(name: str, account: str, source_arn: str | None = None) -> Principal:
    """A service principal acting for one of the account's resources (an EventBridge rule, an API).

    Services sign for the resource they act for: aws:SourceArn and aws:SourceAccount name it.
    """
    context: dict[str, ContextValue] = {"aws:sourceaccount": account, "aws:principalservicename": name}
    if source_arn:
        context["aws:sourcearn"] = source_arn
    return Principal(
        kind="service", arn=name, account=account, service=name, context=MappingProxyType(context)
    )


def anonymous(account: str) -> Principal:
    return Principal(kind="anonymous", arn="anonymous", account=account, names=frozenset({"*"}))


ADMINISTRATOR_ACCESS = from_documents([{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}])


def administrator(account: str) -> Principal:
    """Whoever signs with a key moto did not issue: the operator, the CLI, the runtime itself.

    They act as the account's administrator does on AWS: every identity-based permission, but still
    subject to a resource policy's explicit Deny (a bucket denied to everyone is denied to them too).
    """
    arn = f"arn:aws:iam::{account}:root"
    context: dict[str, ContextValue] = {
        "aws:principalarn": arn,
        "aws:principalaccount": account,
        "aws:principaltype": "Account",
    }
    return Principal(
        kind="administrator",
        arn=arn,
        account=account,
        names=frozenset({arn}),
        identity=ADMINISTRATOR_ACCESS,
        context=MappingProxyType(context),
    )
