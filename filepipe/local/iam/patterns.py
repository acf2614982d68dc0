"""IAM's wildcards (``*``, ``?``) and policy variables (``${aws:username}``), compiled once per pattern."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache

ContextValue = str | tuple[str, ...]

_VARIABLE = re.compile(r"\$\{([^}]*)\}")
# The three escapes IAM defines for characters a pattern would otherwise read as wildcards.
_LITERALS = {"*": "*", "?": "?", "$": "$"}


def _translate(text: str) -> str:
    return "".join(".*" if char == "*" else "." if char == "?" else re.escape(char) for char in text)


@lru_cache(maxsize=16384)
def _compiled(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.compile(_translate(pattern), flags)


def _substituted(pattern: str, context: Mapping[str, ContextValue]) -> str | None:
    """The regex of a pattern with policy variables, or None when a variable has no single value."""
    parts: list[str] = []
    position = 0
    for match in _VARIABLE.finditer(pattern):
        parts.append(_translate(pattern[position : match.start()]))
        name, _, default = match.group(1).partition(",")
        name = name.strip()
        if name in _LITERALS:
            value: ContextValue | None = _LITERALS[name]
        else:
            value = context.get(name.lower())
            if value is None and default:
                value = default.strip().strip("'")
        if not isinstance(value, str):
            return None  # IAM: a variable without a value (or with several) makes the element not match
        parts.append(re.escape(value))
        position = match.end()
    parts.append(_translate(pattern[position:]))
    return "".join(parts)


def matches(
    pattern: str, value: str, context: Mapping[str, ContextValue] | None = None, *, ignore_case: bool = False
) -> bool:
    """Whether ``value`` matches an IAM pattern (policy variables resolved from ``context``)."""
    if "${" not in pattern:
        return _compiled(pattern, ignore_case).fullmatch(value) is not None
    regex = _substituted(pattern, context or {})
    if regex is None:
        return False
    return re.fullmatch(regex, value, re.DOTALL | (re.IGNORECASE if ignore_case else 0)) is not None


@lru_cache(maxsize=16384)
def _arn_pattern(pattern: str) -> re.Pattern[str] | None:
    """One regex for an ARN pattern: wildcards stay within their part, except in the resource part."""
    parts = pattern.split(":", 5)
    if len(parts) != 6:
        return None
    within = [
        "".join("[^:]*" if char == "*" else "[^:]" if char == "?" else re.escape(char) for char in part)
        for part in parts[:5]
    ]
    return re.compile(":".join([*within, _translate(parts[5])]), re.DOTALL)


def arn_matches(pattern: str, value: str, context: Mapping[str, ContextValue] | None = None) -> bool:
    """ARN matching as IAM does it: each of the six colon-separated parts is matched on its own.

    The last part (the resource) may itself contain colons (an S3 key, a log stream), so it takes
    everything after the fifth colon, in the pattern and in the value alike.
    """
    if pattern == "*":
        return True
    if "${" in pattern:
        wanted = pattern.split(":", 5)
        actual = value.split(":", 5)
        if len(wanted) != 6 or len(actual) != 6:
            return matches(pattern, value, context)
        return all(matches(part, text, context) for part, text in zip(wanted, actual, strict=True))
    compiled = _arn_pattern(pattern)
    if compiled is None:
        return matches(pattern, value, context)
    return compiled.fullmatch(value) is not None
