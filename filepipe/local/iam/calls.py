"""One request as IAM sees it: service, operation, parameters, and the accesses it needs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from filepipe.local.iam.patterns import ContextValue
from filepipe.local.iam.policy import Policy


class UnknownOperation(LookupError):
    """The runtime cannot tell which IAM action a request needs: it refuses rather than let it through."""


@dataclass(frozen=True)
class Access:
    """One action on one resource, with the request's service-specific condition keys.

    ``policy`` finds the resource's own policy (read at decision time: it may change while the runtime
    runs); ``policy_required`` marks resources whose policy must allow (KMS keys, role trust policies).
    """

    action: str
    resource: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)
    policy: Callable[[], Policy | None] | None = None
    policy_required: bool = False


@dataclass(frozen=True)
class Needs:
    """What a request needs; ``reads_from`` is the S3 bucket whose missing objects it reads, if any."""

    accesses: tuple[Access, ...]
    reads_from: str | None = None


@dataclass
class Call:
    """A parsed request: botocore's operation name and parameter names wherever the wire allows."""

    service: str  # the signing name: s3, dynamodb, sqs, states, lambda, events, ses, monitoring, ...
    operation: str
    params: dict[str, Any]
    account: str
    region: str
    method: str = "POST"
    path: str = "/"
    query: Mapping[str, list[str]] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    protocol: str = "json"  # json, query, rest-json, rest-xml (how a refusal must be written)
    auth_type: str = "REST-HEADER"  # REST-HEADER, REST-QUERY-STRING or POST (S3's s3:authType)

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        return (
            f"arn:aws:{service}:{self.region if region else ''}:{self.account if account else ''}:{resource}"
        )
