"""The provisioned stack: ids, attributes, and the functions, mappings, schedules and APIs run locally."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from filepipe.local.stack.schedules import ScheduleTiming
from filepipe.template import Template


@dataclass(frozen=True)
class FunctionSpec:
    """What the Lambda runner needs to run one function as the template declares it."""

    logical_id: str
    name: str
    arn: str
    handler: str
    code_path: Path
    runtime: str
    timeout: int
    memory_mb: int
    environment: dict[str, str]
    reserved_concurrency: int | None = None


@dataclass(frozen=True)
class EventSourceMappingSpec:
    """An SQS event source mapping: which queue feeds which function, in what batches."""

    logical_id: str
    uuid: str
    queue_arn: str
    function_name: str
    batch_size: int
    batching_window_seconds: int
    report_batch_item_failures: bool
    enabled: bool
    maximum_concurrency: int | None


@dataclass(frozen=True)
class ScheduleSpec:
    """An EventBridge Scheduler schedule or a scheduled rule, with the target it delivers to.

    A schedule sends its target's ``Input`` (``{}`` without one); a scheduled rule sends a "Scheduled
    Event" through the target's input settings, as EventBridge does.
    """

    logical_id: str
    name: str
    arn: str
    expression: str
    target: dict[str, Any]
    enabled: bool
    scheduled_rule: bool
    timezone: str | None = None  # scheduled rules run in UTC
    start_date: str | None = None
    end_date: str | None = None

    def timing(self) -> ScheduleTiming:
        return ScheduleTiming.parse(self.expression, self.timezone, self.start_date, self.end_date)


@dataclass(frozen=True)
class JwtAuthorizerSpec:
    """An HTTP API JWT authorizer as the template configures it."""

    name: str
    issuer: str
    audiences: tuple[str, ...]
    identity_source: str


@dataclass(frozen=True)
class HttpRoute:
    """One route: method and path template (or ``$default``), the function behind it and its authorizer."""

    method: str
    path: str
    function_arn: str
    payload_format_version: str
    authorizer: str | None
    scopes: tuple[str, ...] = ()
    timeout_ms: int = 30_000  # the integration's timeoutInMillis; HTTP APIs allow 50 to 30,000

    @property
    def route_key(self) -> str:
        return self.path if self.path == "$default" else f"{self.method} {self.path}"


@dataclass
class HttpApiSpec:
    """An HTTP API: its routes, authorizers, CORS configuration and stages."""

    logical_id: str
    api_id: str
    name: str
    routes: list[HttpRoute] = field(default_factory=list)
    authorizers: dict[str, JwtAuthorizerSpec] = field(default_factory=dict)
    cors: dict[str, Any] | None = None
    stages: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class LocalSite:
    """Where the local runtime serves what AWS serves from CloudFront and API Gateway.

    CloudFront distributions resolve to ``web_origin``: CORS origins written as
    ``https://${Distribution.DomainName}`` become the local web origin. HTTP APIs answer at ``api_origin``:
    their default endpoint (``https://{api-id}.execute-api.{region}.amazonaws.com``) becomes it too.
    """

    web_origin: str
    api_origin: str

    @property
    def web_host(self) -> str:
        return urlsplit(self.web_origin).netloc


@dataclass
class Stack:
    """A provisioned stack: physical ids, attributes, functions, and what could not be emulated."""

    name: str
    region: str
    template: Template
    parameters: dict[str, str]
    physical: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    event_source_mappings: dict[str, EventSourceMappingSpec] = field(default_factory=dict)
    schedules: dict[str, ScheduleSpec] = field(default_factory=dict)
    http_apis: dict[str, HttpApiSpec] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def function_by_name(self, name_or_arn: str) -> FunctionSpec:
        name = name_or_arn.split(":function:")[-1].split(":")[0]
        for spec in self.functions.values():
            if name in (spec.name, spec.logical_id):
                return spec
        raise KeyError(f"no function {name_or_arn!r} in stack {self.name}")
