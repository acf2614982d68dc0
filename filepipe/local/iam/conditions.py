"""Condition blocks: every operator IAM documents, ...IfExists, ForAnyValue/ForAllValues and Null."""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from filepipe.local.iam.patterns import ContextValue, arn_matches, matches

Compare = Callable[[str, str, Mapping[str, ContextValue]], bool]


def _text(value: Any) -> str:
    # JSON policies may hold booleans and numbers where IAM compares their text ("false", "10").
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _date(text: str) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _numeric(test: Callable[[float, float], bool]) -> Compare:
    def compare(actual: str, expected: str, _: Mapping[str, ContextValue]) -> bool:
        left, right = _number(actual), _number(expected)
        return left is not None and right is not None and test(left, right)

    return compare


def _dated(test: Callable[[datetime, datetime], bool]) -> Compare:
    def compare(actual: str, expected: str, _: Mapping[str, ContextValue]) -> bool:
        left, right = _date(actual), _date(expected)
        return left is not None and right is not None and test(left, right)

    return compare


def _in_network(actual: str, expected: str, _: Mapping[str, ContextValue]) -> bool:
    try:
        return ipaddress.ip_address(actual) in ipaddress.ip_network(expected, strict=False)
    except ValueError:
        return False


def _binary(actual: str, expected: str, _: Mapping[str, ContextValue]) -> bool:
    try:
        return base64.b64decode(actual) == base64.b64decode(expected)
    except ValueError:
        return False


# Each operator as (comparison, negated): a negated operator holds when no policy value compares true.
_OPERATORS: dict[str, tuple[Compare, bool]] = {
    "stringequals": (lambda a, e, c: a == e, False),
    "stringnotequals": (lambda a, e, c: a == e, True),
    "stringequalsignorecase": (lambda a, e, c: a.lower() == e.lower(), False),
    "stringnotequalsignorecase": (lambda a, e, c: a.lower() == e.lower(), True),
    "stringlike": (lambda a, e, c: matches(e, a, c), False),
    "stringnotlike": (lambda a, e, c: matches(e, a, c), True),
    "numericequals": (_numeric(lambda a, e: a == e), False),
    "numericnotequals": (_numeric(lambda a, e: a == e), True),
    "numericlessthan": (_numeric(lambda a, e: a < e), False),
    "numericlessthanequals": (_numeric(lambda a, e: a <= e), False),
    "numericgreaterthan": (_numeric(lambda a, e: a > e), False),
    "numericgreaterthanequals": (_numeric(lambda a, e: a >= e), False),
    "dateequals": (_dated(lambda a, e: a == e), False),
    "datenotequals": (_dated(lambda a, e: a == e), True),
    "datelessthan": (_dated(lambda a, e: a < e), False),
    "datelessthanequals": (_dated(lambda a, e: a <= e), False),
    "dategreaterthan": (_dated(lambda a, e: a > e), False),
    "dategreaterthanequals": (_dated(lambda a, e: a >= e), False),
    "bool": (lambda a, e, c: a.lower() == e.lower(), False),
    "binaryequals": (_binary, False),
    "ipaddress": (_in_network, False),
    "notipaddress": (_in_network, True),
    "arnequals": (lambda a, e, c: arn_matches(e, a, c), False),
    "arnlike": (lambda a, e, c: arn_matches(e, a, c), False),
    "arnnotequals": (lambda a, e, c: arn_matches(e, a, c), True),
    "arnnotlike": (lambda a, e, c: arn_matches(e, a, c), True),
}


class UnknownConditionOperator(ValueError):
    """A policy names an operator IAM does not have (IAM refuses such a policy: MalformedPolicyDocument)."""


@dataclass(frozen=True)
class Condition:
    """One key under one operator: ``{"StringEquals": {"aws:SourceAccount": ["123"]}}``."""

    operator: str
    key: str  # lower case: condition keys are case-insensitive
    values: tuple[str, ...]
    compare: Compare | None  # None for Null
    negated: bool
    if_exists: bool
    qualifier: str  # "", "foranyvalue" or "forallvalues"

    def holds(self, context: Mapping[str, ContextValue]) -> bool:
        actual = context.get(self.key)
        if self.compare is None:  # Null: "true" means the key must be absent
            absent = actual is None or actual == ()
            return any(absent == (value.lower() == "true") for value in self.values)
        if actual is None or actual == ():
            # A key the request does not carry: false, except that negated operators, ...IfExists and
            # ForAllValues (every one of no values matches) hold.
            if self.qualifier == "forallvalues":
                return True
            if self.qualifier == "foranyvalue":
                return False
            return self.if_exists or self.negated
        request_values = (actual,) if isinstance(actual, str) else actual
        if self.qualifier == "forallvalues":
            return all(self._one(value, context) for value in request_values)
        return any(self._one(value, context) for value in request_values)

    def _one(self, actual: str, context: Mapping[str, ContextValue]) -> bool:
        assert self.compare is not None
        found = any(self.compare(actual, expected, context) for expected in self.values)
        return not found if self.negated else found


def parse_conditions(block: Mapping[str, Mapping[str, Any]] | None) -> tuple[Condition, ...]:
    """A statement's Condition element, each operator and key its own Condition (all must hold)."""
    parsed: list[Condition] = []
    for operator, tests in (block or {}).items():
        qualifier, _, name = operator.rpartition(":")
        qualifier = qualifier.lower()
        if qualifier not in {"", "foranyvalue", "forallvalues"}:
            raise UnknownConditionOperator(operator)
        base = name.lower()
        if_exists = base.endswith("ifexists") and base != "ifexists"
        base = base.removesuffix("ifexists") if if_exists else base
        if base == "null":
            compare: Compare | None = None
            negated = False
        elif base in _OPERATORS:
            compare, negated = _OPERATORS[base]
        else:
            raise UnknownConditionOperator(operator)
        for key, expected in tests.items():
            values: Sequence[Any] = expected if isinstance(expected, list) else [expected]
            parsed.append(
                Condition(
                    operator=operator,
                    key=key.lower(),
                    values=tuple(_text(value) for value in values),
                    compare=compare,
                    negated=negated,
                    if_exists=if_exists,
                    qualifier=qualifier,
                )
            )
    return tuple(parsed)
