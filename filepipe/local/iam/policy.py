"""Policy documents parsed once: statements matched against an action, a resource and a principal."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from typing import Any, Protocol

from filepipe.local.iam.conditions import Condition, parse_conditions
from filepipe.local.iam.patterns import ContextValue, arn_matches, matches


class Caller(Protocol):
    """What a resource policy's Principal element is matched against."""

    @property
    def names(self) -> frozenset[str]: ...  # the ARNs that name this caller itself (session, role, user)

    @property
    def account(self) -> str: ...

    @property
    def service(self) -> str | None: ...  # a service principal's name: events.amazonaws.com


class Naming(Enum):
    """How a Principal element names a caller."""

    NOT = 0
    ACCOUNT = 1  # the caller's account: a delegation to the account's own identity policies
    DIRECT = 2  # the caller itself (or everyone, "*")


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return tuple(str(item) for item in value) if isinstance(value, list) else (str(value),)


@dataclass(frozen=True)
class PrincipalElement:
    """A Principal (or NotPrincipal) element: everyone, AWS principals, services."""

    everyone: bool
    aws: tuple[str, ...]
    services: tuple[str, ...]

    @classmethod
    def parse(cls, element: Any) -> PrincipalElement:
        if element == "*":
            return cls(True, (), ())
        if not isinstance(element, Mapping):
            raise ValueError(f"not a Principal element: {element!r}")
        aws = _as_tuple(element.get("AWS"))
        return cls("*" in aws, aws, _as_tuple(element.get("Service")))

    def naming(self, caller: Caller) -> Naming:
        if self.everyone:
            return Naming.DIRECT
        if caller.service is not None:
            return Naming.DIRECT if caller.service in self.services else Naming.NOT
        if any(name in caller.names for name in self.aws):
            return Naming.DIRECT
        root = f"arn:aws:iam::{caller.account}:root"
        if caller.account in self.aws or root in self.aws:
            return Naming.ACCOUNT
        return Naming.NOT


@dataclass(frozen=True)
class Statement:
    """One statement; ``applies`` says whether it covers an action on a resource in a request context."""

    allow: bool
    actions: tuple[str, ...] | None
    not_actions: tuple[str, ...] | None
    resources: tuple[str, ...] | None
    not_resources: tuple[str, ...] | None
    principal: PrincipalElement | None
    not_principal: PrincipalElement | None
    conditions: tuple[Condition, ...]

    @classmethod
    def parse(cls, statement: Mapping[str, Any]) -> Statement:
        effect = statement.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise ValueError(f"a statement's Effect must be Allow or Deny: {statement!r}")
        has = statement.__contains__
        return cls(
            allow=effect == "Allow",
            actions=_as_tuple(statement["Action"]) if has("Action") else None,
            not_actions=_as_tuple(statement["NotAction"]) if has("NotAction") else None,
            resources=_as_tuple(statement["Resource"]) if has("Resource") else None,
            not_resources=_as_tuple(statement["NotResource"]) if has("NotResource") else None,
            principal=PrincipalElement.parse(statement["Principal"]) if has("Principal") else None,
            not_principal=PrincipalElement.parse(statement["NotPrincipal"]) if has("NotPrincipal") else None,
            conditions=parse_conditions(statement.get("Condition")),
        )

    def covers(self, action: str, resource: str, context: Mapping[str, ContextValue]) -> bool:
        if self.actions is not None and not any(matches(a, action, ignore_case=True) for a in self.actions):
            return False
        if self.not_actions is not None and any(
            matches(a, action, ignore_case=True) for a in self.not_actions
        ):
            return False
        # A statement without Resource (a role's trust policy) is about the resource that holds it.
        if self.resources is not None and not any(arn_matches(r, resource, context) for r in self.resources):
            return False
        if self.not_resources is not None and any(
            arn_matches(r, resource, context) for r in self.not_resources
        ):
            return False
        return all(condition.holds(context) for condition in self.conditions)

    def naming(self, caller: Caller) -> Naming:
        """How this statement's Principal or NotPrincipal element names ``caller``."""
        if self.principal is not None:
            return self.principal.naming(caller)
        if self.not_principal is not None:
            # NotPrincipal: everyone except whom it names; the account itself is named by its root.
            return Naming.NOT if self.not_principal.naming(caller) is not Naming.NOT else Naming.DIRECT
        return Naming.DIRECT  # identity policies name no principal: they are the caller's own


@dataclass(frozen=True)
class Verdict:
    """What one policy says about a request: an explicit deny, and whom its allows cover."""

    denies: bool
    allows: bool  # an Allow naming the caller itself (or an identity policy's Allow)
    delegates: bool  # an Allow naming the caller's account: it counts only with an identity policy's Allow


_NOTHING = Verdict(False, False, False)


@dataclass(frozen=True)
class Policy:
    """The statements of one or more documents, evaluated together."""

    statements: tuple[Statement, ...]

    def verdict(
        self, action: str, resource: str, context: Mapping[str, ContextValue], caller: Caller | None = None
    ) -> Verdict:
        allows = delegates = False
        for statement in self.statements:
            if not statement.covers(action, resource, context):
                continue
            naming = Naming.DIRECT if caller is None else statement.naming(caller)
            if naming is Naming.NOT:
                continue
            if not statement.allow:
                return Verdict(True, False, False)  # an explicit deny decides at once
            if naming is Naming.DIRECT:
                allows = True
            else:
                delegates = True
        return Verdict(False, allows, delegates) if allows or delegates else _NOTHING

    def allows(self, action: str, resource: str, context: Mapping[str, ContextValue] | None = None) -> bool:
        """Identity-policy reading: some Allow covers the request and no Deny does."""
        verdict = self.verdict(action, resource, context or {})
        return verdict.allows and not verdict.denies


EMPTY = Policy(())


def _statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    statements = document.get("Statement", [])
    return statements if isinstance(statements, list) else [statements]


def from_documents(documents: Iterable[Mapping[str, Any]]) -> Policy:
    return Policy(tuple(Statement.parse(s) for document in documents for s in _statements(document)))


@lru_cache(maxsize=1024)
def parse(*texts: str) -> Policy:
    """The policy of these JSON documents, parsed once for as long as their texts stay the same."""
    return from_documents(json.loads(text) for text in texts)
