"""Services the template does not use: ``prefix:Operation`` on ``*``, or refused when it cannot be named."""

from __future__ import annotations

from filepipe.local.iam.calls import Access, Call, Needs, UnknownOperation

# Signing names whose IAM prefix differs.
_PREFIXES = {"monitoring": "cloudwatch", "email": "ses", "execute-api": "execute-api"}


def needs(call: Call) -> Needs:
    if not call.operation:
        raise UnknownOperation(f"{call.service} {call.method} {call.path}")
    prefix = _PREFIXES.get(call.service, call.service)
    return Needs((Access(f"{prefix}:{call.operation}", "*"),))
