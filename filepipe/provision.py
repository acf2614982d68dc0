"""Create every resource of the transformed template through the services' public APIs."""

from __future__ import annotations

import fnmatch
import hashlib
import io
import json
import platform
import re
import sys
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from filepipe.local.services.awslambda import quotas as lambda_quotas
from filepipe.local.services.scheduler.expressions import ScheduleError, ScheduleTiming
from filepipe.template import PSEUDO_ACCOUNT_ID, Resolver, Template, references, substitute_definition

ClientFactory = Callable[[str], Any]
Handler = Callable[[str, "_Properties"], tuple[str, dict[str, Any]]]

# CloudWatch quotas a deploy meets: metrics (MetricDataQueries) in one alarm, characters in a composite rule.
MAX_METRICS_PER_ALARM = 10
MAX_ALARM_RULE_CHARS = 10240
_HOST_ARCHITECTURE = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(
    platform.machine().lower(), platform.machine().lower()
)
# Functions run on the interpreter that runs the local runtime, with packages installed for it.
_HOST_PYTHON = f"python{sys.version_info.major}.{sys.version_info.minor}"


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


def _localize(value: Any, origins: dict[str, str]) -> Any:
    """Replace the https URLs of hosts served locally (plain HTTP, another port) by their local origin."""
    if isinstance(value, str):
        for remote, local in origins.items():
            if value == remote or value.startswith(remote + "/"):
                return local + value[len(remote) :]
        return value
    if isinstance(value, list):
        return [_localize(item, origins) for item in value]
    if isinstance(value, dict):
        return {key: _localize(item, origins) for key, item in value.items()}
    return value


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


class _Properties(dict[str, Any]):
    """Resolved properties that remember which ones a handler looked at; the rest are reported."""

    def __init__(self, values: dict[str, Any]) -> None:
        super().__init__(values)
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.read.add(key)
        return super().__contains__(key)

    def items(self) -> Any:
        self.read.update(self.keys())
        return super().items()

    def unread(self) -> list[str]:
        return sorted(set(self.keys()) - self.read)


def _tag_list(tags: Any) -> list[dict[str, str]]:
    if isinstance(tags, dict):
        return [{"Key": str(k), "Value": str(v)} for k, v in tags.items()]
    return [{"Key": str(t["Key"]), "Value": str(t["Value"])} for t in tags or []]


def _tag_map(tags: Any) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in _tag_list(tags)}


class Provisioner:
    """Walks resources in dependency order and creates each with the matching service API."""

    def __init__(
        self,
        clients: ClientFactory,
        stack: Stack,
        site: LocalSite | None = None,
        create_event_source_mappings: bool = False,
        iam_enforced: bool = False,
    ) -> None:
        self._clients = clients
        self.stack = stack
        self._site = site
        self._local_origins = {f"https://{site.web_host}": site.web_origin} if site else {}
        self._create_mappings = create_event_source_mappings
        # The caller evaluates IAM on every request (the local runtime): resource policies go in whole.
        self._iam_enforced = iam_enforced
        self._warnings: dict[str, list[str]] = {}
        # Composite alarms by name: moto has no API for them, so the provisioner keeps what it checked.
        self._composite_alarms: dict[str, dict[str, Any]] = {}
        self._resolve = Resolver(
            stack.parameters,
            {
                "AWS::Region": stack.region,
                "AWS::AccountId": PSEUDO_ACCOUNT_ID,
                "AWS::StackName": stack.name,
                "AWS::StackId": (
                    f"arn:aws:cloudformation:{stack.region}:{PSEUDO_ACCOUNT_ID}:stack/{stack.name}/local"
                ),
                "AWS::Partition": "aws",
                "AWS::URLSuffix": "amazonaws.com",
                "AWS::NoValue": "",
            },
            self._ref,
            self._get_att,
            stack.template.conditions,
        )
        self.handlers: dict[str, Handler] = {
            "AWS::S3::Bucket": self._bucket,
            "AWS::S3::BucketPolicy": self._bucket_policy,
            "AWS::DynamoDB::Table": self._table,
            "AWS::SQS::Queue": self._queue,
            "AWS::SQS::QueuePolicy": self._queue_policy,
            "AWS::Events::Rule": self._rule,
            "AWS::Events::EventBus": self._event_bus,
            "AWS::IAM::Role": self._role,
            "AWS::Lambda::Function": self._function,
            "AWS::Lambda::LayerVersion": self._layer,
            "AWS::Lambda::Permission": self._permission,
            "AWS::Lambda::EventSourceMapping": self._event_source_mapping,
            "AWS::StepFunctions::StateMachine": self._state_machine,
            "AWS::Logs::LogGroup": self._log_group,
            "AWS::Cognito::UserPool": self._user_pool,
            "AWS::Cognito::UserPoolClient": self._user_pool_client,
            "AWS::KMS::Key": self._kms_key,
            "AWS::SES::EmailIdentity": self._email_identity,
            "AWS::SNS::Topic": self._topic,
            "AWS::SNS::Subscription": self._subscription,
            "AWS::CloudWatch::Alarm": self._alarm,
            "AWS::CloudWatch::CompositeAlarm": self._composite_alarm,
            "AWS::CloudWatch::Dashboard": self._dashboard,
            "AWS::ApiGatewayV2::Api": self._http_api,
            "AWS::ApiGatewayV2::Stage": self._http_api_stage,
            "AWS::Scheduler::Schedule": self._schedule,
            "AWS::CloudFront::Distribution": self._distribution,
            "AWS::CloudFront::OriginAccessControl": self._cloudfront_part,
        }

    # ------------------------------------------------------------ plumbing
    def _ref(self, logical: str) -> str:
        if logical not in self.stack.physical:
            raise KeyError(f"Ref to {logical}, which is not created (yet)")
        return self.stack.physical[logical]

    def _get_att(self, logical: str, attribute: str) -> Any:
        attributes = self.stack.attributes.get(logical, {})
        if attribute not in attributes:
            raise KeyError(f"GetAtt {logical}.{attribute} is not known locally")
        return attributes[attribute]

    def _name(self, logical: str, max_length: int = 63, lower: bool = False) -> str:
        digest = hashlib.sha256(f"{self.stack.name}/{logical}".encode()).hexdigest()[:8]
        name = f"{self.stack.name}-{logical}"[: max_length - 9] + f"-{digest}"
        return name.lower() if lower else name

    def _arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.stack.region}:{PSEUDO_ACCOUNT_ID}:{resource}"

    def warn(self, message: str, logical: str | None = None) -> None:
        """Record what is not emulated; the same message for several resources becomes one line."""
        ids = self._warnings.setdefault(message, [])
        if logical is not None and logical not in ids:
            ids.append(logical)

    def _warning_lines(self) -> list[str]:
        return [f"{message}: {', '.join(ids)}" if ids else message for message, ids in self._warnings.items()]

    def order(self) -> list[str]:
        resources = self.stack.template.resources
        done: list[str] = []
        seen: set[str] = set()

        def visit(name: str, path: tuple[str, ...]) -> None:
            if name in seen:
                return
            if name in path:
                raise ValueError(f"circular dependency: {' -> '.join((*path, name))}")
            resource = resources[name]
            depends = resource.get("DependsOn", [])
            needs = references(resource.get("Properties", {})) | set(
                [depends] if isinstance(depends, str) else depends
            )
            for other in sorted(needs & resources.keys()):
                visit(other, (*path, name))
            seen.add(name)
            done.append(name)

        for name in resources:
            visit(name, ())
        return done

    def _localize(self, value: Any) -> Any:
        return _localize(value, self._local_origins) if self._local_origins else value

    def run(self) -> Stack:
        for logical in self.order():
            resource = self.stack.template.resources[logical]
            if "Condition" in resource and not self._resolve.condition(resource["Condition"]):
                continue
            properties = _Properties(self._localize(self._resolve(resource.get("Properties", {}))))
            handler = self.handlers.get(resource["Type"])
            if handler is None:
                physical, attributes = self._not_emulated(logical, resource["Type"])
            else:
                physical, attributes = handler(logical, properties)
                for name in properties.unread():
                    self.warn(f"{resource['Type']} property {name} is not emulated locally", logical)
            self.stack.physical[logical] = physical
            self.stack.attributes[logical] = attributes
        self.stack.outputs = {
            name: self._localize(self._resolve(spec["Value"]))
            for name, spec in self.stack.template.outputs.items()
            if "Condition" not in spec or self._resolve.condition(spec["Condition"])
        }
        self.stack.warnings = self._warning_lines()
        return self.stack

    def _not_emulated(self, logical: str, resource_type: str) -> tuple[str, dict[str, Any]]:
        self.warn(f"{resource_type} is not emulated locally", logical)
        physical = self._name(logical)
        return physical, _Placeholder(physical)

    # ------------------------------------------------------------ S3
    def _bucket(self, logical: str, props: _Properties) -> tuple[str, dict[str, Any]]:
        s3 = self._clients("s3")
        name = props.get("BucketName") or self._name(logical, lower=True)
        s3.create_bucket(Bucket=name)
        if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        if "BucketEncryption" in props:
            rules = [
                {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
                for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            ]
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        if "PublicAccessBlockConfiguration" in props:
            s3.put_public_access_block(
                Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
            )
        if "LifecycleConfiguration" in props:
            s3.put_bucket_lifecycle_configuration(
                Bucket=name,
                LifecycleConfiguration={
                    "Rules": [_lifecycle_rule(rule) for rule in props["LifecycleConfiguration"]["Rules"]]
                },
            )
            self.warn("lifecycle rules are stored; objects are not expired locally", logical)
        if "CorsConfiguration" in props:
            s3.put_bucket_cors(
                Bucket=name,
                CORSConfiguration={
                    "CORSRules": [_cors_rule(rule) for rule in props["CorsConfiguration"]["CorsRules"]]
                },
            )
        if "Tags" in props:
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": _tag_list(props["Tags"])})
        if "OwnershipControls" in props:
            s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=props["OwnershipControls"])
        if "LoggingConfiguration" in props:
            # moto checks, as S3 does, that the target bucket's policy lets the logging service write.
            logging = props["LoggingConfiguration"]
            s3.put_bucket_logging(
                Bucket=name,
                BucketLoggingStatus={
                    "LoggingEnabled": {
                        "TargetBucket": logging.get("DestinationBucketName", name),
                        "TargetPrefix": logging.get("LogFilePrefix", ""),
                    }
                },
            )
            self.warn("S3 server access logging is configured; no log records are written locally", logical)
        notifications = props.get("NotificationConfiguration", {})
        if notifications.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
            s3.put_bucket_notification_configuration(
                Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
            )
        for unsupported in sorted(set(notifications) - {"EventBridgeConfiguration"}):
            self.warn(f"S3 NotificationConfiguration.{unsupported} is not emulated locally", logical)
        return name, {
            "Arn": f"arn:aws:s3:::{name}",
            "DomainName": f"{name}.s3.amazonaws.com",
            "RegionalDomainName": f"{name}.s3.{self.stack.region}.amazonaws.com",
        }

    def _bucket_policy(self, logical: str, props: _Properties) -> tuple[str, dict[str, Any]]:
        document = dict(props["PolicyDocument"])
        if not self._iam_enforced:
            # moto's own check ignores conditions, so a conditional Deny (TLS only, say) would refuse every
            # request; without the runtime's IAM evaluation such statements stay out of moto.
            document["Statement"] = [
                statement
                for statement in document["Statement"]
                if not (statement.get("Effect") == "Deny" and "Condition" in statement)
            ]
            self.warn(
                "bucket policies are stored but not enforced locally (conditional denials not even stored)",
                logical,
            )
        if document["Statement"]:
            self._clients("s3").put_bucket_policy(Bucket=props["Bucket"], Policy=json.dumps(document))
        return props["Bucket"], {}

    # ------------------------------------------------------------ DynamoDB
    def _table(self, logical: str, props: _Properties) -> tuple[str, dict[str, Any]]:
        dynamodb = self._clients("dynamodb")
        name = props.get("TableName") or self._name(logical, max_length=255)
        kwargs: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes", "StreamSpecification"):
            if key in props:
                kwargs[key] = props[key]
        if "StreamSpecification" in kwargs:
            kwargs["StreamSpecification"] = {"StreamEnabled": True, **kwargs["StreamSpecification"]}
        if "ProvisionedThroughput" in props:
            kwargs["ProvisionedThroughput"] = {k: int(v) for k, v in props["ProvisionedThroughput"].items()}
        if "SSESpecification" in props:
            kwargs["SSESpecification"] = {"Enabled": bool(props["SSESpecification"].get("SSEEnabled"))}
        if "Tags" in props:
            kwargs["Tags"] = _tag_list(props["Tags"])
        description = dynamodb.create_table(**kwargs)["TableDescription"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={
                    "AttributeName": ttl["AttributeName"],
                    "Enabled": bool(ttl["Enabled"]),
                },
            )
            self.warn("DynamoDB TTL is recorded; expired items are not deleted locally", logical)
        pitr = props.get("PointInTimeRecoverySpecification", {})
        if pitr.get("PointInTimeRecoveryEnabled"):
            dynamodb.update_continuous_backups(
                TableName=name,
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
            )
        return name, {"Arn": description["TableArn"], "StreamArn": description.get("LatestStreamArn", "")}

    # ------------------------------------------------------------ SQS
    def _queue(self, logical: str, props: _Properties) -> tuple[str, dict[str, Any]]:
        sqs = self._clients("sqs")
        name = props.get("QueueName") or self._name(logical, max_length=80)
        if props.get("FifoQueue") and not name.endswith(".fifo"):
            name = name[:75] + ".fifo"
        attributes = {
            key: json.dumps(value)
            if isinstance(value, dict)
            else str(value).lower()
            if isinstance(value, bool)
            else str(value)
            for key, value in props.items()
            if key not in {"QueueName", "Tags"}
        }
        kwargs: dict[str, Any] = {"QueueName": name, "Attributes": attributes}
        if props.get("Tags"):
            kwargs["tags"] = _tag_map(props["Tags"])
        url = sqs.create_queue(**kwargs)["QueueUrl"]
        return url, {"Arn": self._arn("sqs", name), "QueueName": name, "QueueUrl": url}

    def _queue_policy(self, logical: str, props: _Properties) -> tuple[str, dict[str, Any]]:
        sqs = self._clients("sqs")
        for url in props["Queues"]:
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(props["PolicyDocument"])})
        if not self._iam_enforced:
            self.warn("queue policies are stored but not enforced locally", logical)
        return self._name(logical), {}

    # ------------------------------------------------------------ EventBridge
    def _event_bus(self, logical: str, props: _Properties) -> tuple[str, dict[str, Any]]:
        kwargs: dict[str, Any] = {"Name": props["Name"]}
        if "Description" in props:
            kwargs["Description"] = props["Description"]
        if "Tags" in props:
            kwargs["Tags"] = _tag_list(props["Tags"])
        response = self._clients("events").create_event_bus(**kwargs)
        return props["Name"], {"Arn": response["EventBusArn"], "Name": props["Name"]}

    def _rule(self, logical: str, props: _Properties) -> tuple[str, dict[str, Any]]:
        events = self._clients("events")
        name = props.get("Name") or self._name(logical, max_length=64)
        bus = props.get("EventBusName", "default")
        kwargs: dict[str, Any] = {"Name": name, "EventBusName": bus, "State": props.get("State", "ENABLED")}
        if "EventPattern" in props:
            kwargs["EventPattern"] = json.dumps(props["EventPattern"])
        if "ScheduleExpression" in props:
            kwargs["ScheduleExpression"] = props["ScheduleExpression"]
        for key in ("Description", "RoleArn"):
            if key in props:
                kwargs[key] = props[key]
        arn = events.put_rule(**kwargs)["RuleArn"]
        targets = [dict(target) for target in props.get("Targets", [])]
        if targets:
            events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
        if "ScheduleExpression" in props:
            for target in targets:
                self._add_schedule(
                    f"{logical}/{target['Id']}",
                    ScheduleSpec(
                        logical_id=logical,
                        name=name,
                        arn=arn,
                        expression=props["ScheduleExpression"],
                        target=target,
                        enabled=kwargs["State"] == "ENABLED",
                        scheduled_rule=True,
                    ),
                )
        return name, {"Arn": arn}

    def _add_schedule(self, key: str, spec: ScheduleSpec) -> None:
        """Keep a schedule the local runtime runs; one EventBridge would refuse stops the deployment."""
        try:
            spec.timing()
        except ScheduleError as error:
            raise ValueError(f"{spec.logical_id}: invalid schedule {spec.expression!r}: {error}") from error
        self.stack.schedules[key] = spec

    # ------------------------------------------------------------ IAM
    def _role(self, logical: str, props: _Properties) -> tuple[str, dict[str, Any]]:
        iam = self._clients("iam")
        name = props.get("RoleName") or self._name(logical, max_length=64)
        kwargs: dict[str, Any] = {
            "RoleName": name,
            "AssumeRolePolicyDocument": json.dumps(props["AssumeRolePolicyDocument"]),
        }
        for key in ("Path", "Description", "PermissionsBoundary"):
            if key in props:
                kwargs[key] = props[key]
        if "MaxSessionDuration" in props:
            kwargs["MaxSessionDuration"] = int(props["MaxSessionDuration"])
        if "Tags" in props:
            kwargs["Tags"] = _tag_list(props["Tags"])
        arn = iam.create_role(**kwargs)["Role"]["Arn"]
        for policy in props.get("Policies", []):
            # IAM's API insists on a Version that CloudFormation lets templates leave out.
            document = {"Version": "2012-10-17", **policy["PolicyDocument"]}
            iam.put_role_policy(
                RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(document)
            )
        for policy_arn in props.get("ManagedPolicyArns", []):
            try:
                iam.attach_role_policy(RoleName=name, PolicyArn=policy_arn)
            except Exception:
                self.warn(f"managed policy {policy_arn} is unknown locally and not attached", logical)
        if not self._iam_enforced:
            self.warn("IAM roles and policies are created but not enforced locally (every call is allowed)")
        return name, {"Arn": arn, "RoleId": name}

    # ------------------------------------------------------------ Lambda
    def _function(self, logical: str, props: _Properties) -> tuple[str, dict[str, Any]]:
        name = props.get("FunctionName") or self._name(logical, max_length=64)
        environment = {k: str(v) for k, v in props.get("Environment", {}).get("Variables", {}).items()}
        code_path = self.stack.template.code_paths.get(logical)
        props.get("Code")  # the runner loads the code from the template's CodeUri
        if code_path is None:
            raise ValueError(f"{logical}: no local code path (not an AWS::Serverless::Function?)")
        runtime = props.get("Runtime", "python3.12")
        timeout = int(props.get("Timeout", 3))
        memory = int(props.get("MemorySize", 128))
        kwargs: dict[str, Any] = {
            "FunctionName": name,
            "Runtime": runtime,
            "Role": props["Role"],
            "Handler": props["Handler"],
            "Code": {"ZipFile": _placeholder_zip()},
            "Timeout": timeout,
            "MemorySize": memory,
            "Environment": {"Variables": environment},
            "Description": props.get("Description", ""),
        }
        if "Tags" in props:
            kwargs["Tags"] = _tag_map(props["Tags"])
        if "Architectures" in props:
            kwargs["Architectures"] = props["Architectures"]
            if props["Architectures"] != [_HOST_ARCHITECTURE]:
                self.warn(f"functions run on this machine's architecture ({_HOST_ARCHITECTURE})", logical)
        if runtime != _HOST_PYTHON:
            self.warn(f"functions run on this machine's Python ({_HOST_PYTHON})", logical)
        if "EphemeralStorage" in props:
            kwargs["EphemeralStorage"] = {"Size": int(props["EphemeralStorage"]["Size"])}
            self.warn("EphemeralStorage is recorded; /tmp is not size-limited locally", logical)
        if "TracingConfig" in props:
            kwargs["TracingConfig"] = props["TracingConfig"]
            if props["TracingConfig"].get("Mode") == "Active":
                self.warn("X-Ray tracing is not emulated locally", logical)
        if props.get("Layers"):
            kwargs["Layers"] = props["Layers"]
            self.warn("layers are not mounted locally (the local runtime supplies clamd itself)", logical)
        self._check_function(logical, kwargs)
        response = self._clients("lambda").create_function(**kwargs)
        reserved = props.get("ReservedConcurrentExecutions")
        if reserved is not None:
            try:
                self._clients("lambda").put_function_concurrency(
                    FunctionName=name, ReservedConcurrentExecutions=int(reserved)
                )
            except ClientError as error:  # the local runtime's Lambda holds the account's concurrency quota
                refusal = error.response["Error"]
                raise ValueError(
                    f"{logical}: Lambda refuses ReservedConcurrentExecutions {reserved} ({refusal['Code']}): "
                    f"{refusal['Message']}"
                ) from error
        self.stack.functions[logical] = FunctionSpec(
            logical_id=logical,
            name=name,
            arn=response["FunctionArn"],
            handler=props["Handler"],
            code_path=code_path,
            runtime=runtime,
            timeout=timeout,
            memory_mb=memory,
            environment=environment,
            reserved_concurrency=int(reserved) if reserved is not None else None,
        )
        return name, {"Arn": response["FunctionArn"]}

    @staticmethod
    def _check_function(logical: str, kwargs: dict[str, Any]) -> None:
        """Stop the deployment where CreateFunction refuses the function (CloudFormation rolls back)."""
        try:
            lambda_quotas.check_runtime(kwargs["Runtime"], datetime.now(UTC).date())
            lambda_quotas.check_configuration(
                kwargs["MemorySize"],
                kwargs["Timeout"],
                kwargs.get("EphemeralStorage", {}).get("Size"),
                kwargs["Environment"]["Variables"],
            )
        except lambda_quotas.LambdaRefusal as refusal:
            raise ValueError(f"{logical}: Lambda refuses it ({refusal.code}): {refusal}") from refusal

    def _layer(self, logical: str, props: _Properties) -> tuple[str, dict[str, Any]]:
        # Published with placeholder content: layers are never mounted locally; functions using one say so.
        props.get("Content")
        kwargs: dict[str, Any] = {
            "LayerName": props.get("LayerName") or self._name(logical, max_length=64),
            "Content": {"ZipFile": _placeholder_zip()},
        }
        for key in ("Description", "CompatibleRuntimes", "CompatibleArchitectures", "LicenseInfo"):
            if key in props:
                kwargs[key] = props[key]
        arn = self._clients("lambda").publish_layer_version(**kwargs)["LayerVersionArn"]
        return arn, {"Arn": arn}

    def _permission(self, logical: str, props: _Properties) -> tuple[str, dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "FunctionName": props["FunctionName"],
            "StatementId": logical,
            "Action": props["Action"],
            "Principal": props["Principal"],
        }
        for key in ("SourceArn", "SourceAccount", "EventSourceToken", "PrincipalOrgID"):
            if key in props:
                kwargs[key] = props[key]
        self._clients("lambda").add_permission(**kwargs)
        if not self._iam_enforced:
            self.warn("Lambda resource policies are stored but not enforced locally", logical)
        return logical, {}

    def _event_source_mapping(self, logical: str, props: _Properties) -> tuple[str, dict[str, Any]]:
        source = props["EventSourceArn"]
        if source.split(":")[2] != "sqs":
            self.warn("event source mappings other than SQS are not emulated locally", logical)
            return self._name(logical), {}
        if "FilterCriteria" in props:
            self.warn("event source mapping FilterCriteria are not applied locally", logical)
        kwargs: dict[str, Any] = {
            "EventSourceArn": source,
            "FunctionName": props["FunctionName"],
            "BatchSize": int(props.get("BatchSize", 10)),
            "Enabled": bool(props.get("Enabled", True)),
        }
        window = int(props.get("MaximumBatchingWindowInSeconds", 0))
        if window:
            kwargs["MaximumBatchingWindowInSeconds"] = window
        response_types = list(props.get("FunctionResponseTypes", []))
        if response_types:
            kwargs["FunctionResponseTypes"] = response_types
        concurrency = props.get("ScalingConfig", {}).get("MaximumConcurrency")
        if self._create_mappings:
            mapping_id = self._clients("lambda").create_event_source_mapping(**kwargs)["UUID"]
        else:
            # moto invokes a mapped function itself when a message arrives (with Docker); only a caller
            # that polls the queue (the local runtime) asks for the mapping to be created.
            mapping_id = hashlib.sha256(f"{self.stack.name}/{logical}".encode()).hexdigest()[:32]
            self.warn("event source mappings are recorded, not created (this caller polls no queue)", logical)
        self.stack.event_source_mappings[logical] = EventSourceMappingSpec(
            logical_id=logical,
            uuid=mapping_id,
            queue_arn=source,
            function_name=props["FunctionName"],
            batch_size=kwargs["BatchSize"],
            batching_window_seconds=window,
            report_batch_item_failures="ReportBatchItemFailures" in response_types,
            enabled=kwargs["Enabled"],
            maximum_concurrency=int(concurrency) if concurrency else None,
        )
        return mapping_id, {"Id": mapping_id}

    # ------------------------------------------------------------ Step Functions
    def _state_machine(self, logical: str, props: _Properties) -> tuple[str, dict[str, Any]]:
        name = props.get("StateMachineName") or self._name(logical, max_length=80)
        definition = props["DefinitionString"]
        if not isinstance(definition, str):
            definition = json.dumps(definition)
        definition = substitute_definition(definition, props.get("DefinitionSubstitutions", {}))
        kwargs: dict[str, Any] = {
            "name": name,
            "definition": definition,
            "roleArn": props["RoleArn"],
            "type": props.get("StateMachineType", "STANDARD"),
        }
        if "TracingConfiguration" in props:
            kwargs["tracingConfiguration"] = {"enabled": bool(props["TracingConfiguration"].get("Enabled"))}
            if kwargs["tracingConfiguration"]["enabled"]:
                self.warn("X-Ray tracing is not emulated locally", logical)
        if "Tags" in props:
            kwargs["tags"] = [{"key": t["Key"], "value": t["Value"]} for t in _tag_list(props["Tags"])]
        if "LoggingConfiguration" in props:
            logging_config = props["LoggingConfiguration"]
            kwargs["loggingConfiguration"] = {
                "level": logging_config.get("Level", "OFF"),
                "includeExecutionData": bool(logging_config.get("IncludeExecutionData", False)),
                "destinations": [
                    {"cloudWatchLogsLogGroup": {"logGroupArn": d["CloudWatchLogsLogGroup"]["LogGroupArn"]}}
                    for d in logging_config.get("Destinations", [])
                ],
            }
            self.warn("execution logs are not written to CloudWatch Logs locally", logical)
        arn = self._clients("stepfunctions").create_state_machine(**kwargs)["stateMachineArn"]
        return arn, {"Arn": arn, "Name": name}

    def _log_group(self, logical: str, props: _Properties) -> tuple[str, dict[str, Any]]:
        logs = self._clients("logs")
        name = props.get("LogGroupName") or self._name(logical, max_length=512)
        kwargs: dict[str, Any] = {"logGroupName": name}
        if "Tags" in props:
            kwargs["tags"] = _tag_map(props["Tags"])
        logs.create_log_group(**kwargs)
        if "RetentionInDays" in props:
            logs.put_retention_policy(logGroupName=name, retentionInDays=int(props["RetentionInDays"]))
        return name, {"Arn": self._arn("logs", f"log-group:{name}:*")}

    # ------------------------------------------------------------ Cognito
    def _user_pool(self, logical: str, props: _Properties) -> tuple[str, dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "PoolName": props.get("UserPoolName") or self._name(logical, max_length=128)
        }
        for key in (
            "UsernameAttributes",
            "AliasAttributes",
            "AutoVerifiedAttributes",
            "Policies",
            "AccountRecoverySetting",
            "AdminCreateUserConfig",
            "MfaConfiguration",
            "UsernameConfiguration",
            "VerificationMessageTemplate",
            "EmailConfiguration",
            "DeletionProtection",
            "UserPoolTags",
        ):
            if key in props:
                kwargs[key] = props[key]
        if "Schema" in props:
            kwargs["Schema"] = [{"AttributeDataType": "String", **attribute} for attribute in props["Schema"]]
        pool = self._clients("cognito-idp").create_user_pool(**kwargs)["UserPool"]
        return pool["Id"], {
            "Arn": pool["Arn"],
            "ProviderName": f"cognito-idp.{self.stack.region}.amazonaws.com/{pool['Id']}",
            "ProviderURL": f"https://cognito-idp.{self.stack.region}.amazonaws.com/{pool['Id']}",
        }

    def _user_pool_client(self, logical: str, props: _Properties) -> tuple[str, dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "UserPoolId": props["UserPoolId"],
            "ClientName": props.get("ClientName") or self._name(logical, max_length=128),
        }
        for key in (
            "GenerateSecret",
            "ExplicitAuthFlows",
            "AccessTokenValidity",
            "IdTokenValidity",
            "RefreshTokenValidity",
            "TokenValidityUnits",
            "PreventUserExistenceErrors",
            "CallbackURLs",
            "LogoutURLs",
            "AllowedOAuthFlows",
            "AllowedOAuthScopes",
            "AllowedOAuthFlowsUserPoolClient",
            "SupportedIdentityProviders",
            "ReadAttributes",
            "WriteAttributes",
            "EnableTokenRevocation",
        ):
            if key in props:
                kwargs[key] = props[key]
        client = self._clients("cognito-idp").create_user_pool_client(**kwargs)["UserPoolClient"]
        return client["ClientId"], {"ClientId": client["ClientId"]}

    # ------------------------------------------------------------ KMS
    def _kms_key(self, logical: str, props: _Properties) -> tuple[str, dict[str, Any]]:
        kms = self._clients("kms")
        kwargs: dict[str, Any] = {"Policy": json.dumps(props["KeyPolicy"])}
        for key in ("Description", "KeyUsage", "KeySpec"):
            if key in props:
                kwargs[key] = props[key]
        if "Tags" in props:
            kwargs["Tags"] = [{"TagKey": t["Key"], "TagValue": t["Value"]} for t in props["Tags"]]
        key_id = kms.create_key(**kwargs)["KeyMetadata"]["KeyId"]
        if props.get("EnableKeyRotation"):
            kms.enable_key_rotation(KeyId=key_id)
        return key_id, {"Arn": self._arn("kms", f"key/{key_id}"), "KeyId": key_id}

    def _check_alarm_can_notify(self, logical: str, actions: Iterable[str]) -> None:
        """Refuse what AWS silently drops: alarm notifications to a topic whose key CloudWatch cannot use."""
        sns = self._clients("sns")
        for action in actions:
            if not action.startswith("arn:aws:sns:"):
                continue
            key = sns.get_topic_attributes(TopicArn=action)["Attributes"].get("KmsMasterKeyId")
            if not key:
                continue
            if key.startswith("alias/aws/") or not _key_policy_allows_cloudwatch(
                self._clients("kms").get_key_policy(KeyId=key, PolicyName="default")["Policy"]
            ):
                raise ValueError(
                    f"{logical}: notifies {action}, encrypted with KMS key {key}, whose key policy does not "
                    "let cloudwatch.amazonaws.com use it (kms:Decrypt, kms:GenerateDataKey*): on AWS every "
                    "notification would be dropped silently"
                )

    # ------------------------------------------------------------ SES
    def _email_identity(self, logical: str, props: _Properties) -> tuple[str, dict[str, Any]]:
        """An identity starts unverified, as on AWS: nothing is created in SES until the operator's step.

        moto marks an identity verified the moment it exists (and then sends from it), so the identity
        stays out of moto until `filepipe ses verify` or `filepipe local --verify-email` verifies it.
        """
        identity = str(props["EmailIdentity"])
        self.warn(
            "SES identities start unverified and no verification email is sent locally; verify one with "
            "`filepipe ses verify ADDRESS` (or `filepipe local --verify-email ADDRESS`)",
            logical,
        )
        return identity, _Placeholder(identity)

    # ------------------------------------------------------------ SNS and CloudWatch
    def _topic(self, logical: str, props: _Properties) -> tuple[str, dict[str, Any]]:
        name = props.get("TopicName") or self._name(logical, max_length=256)
        attributes = {
            key: str(props[key]) for key in ("KmsMasterKeyId", "DisplayName", "FifoTopic") if key in props
        }
        kwargs: dict[str, Any] = {"Name": name, "Attributes": attributes}
        if "Tags" in props:
            kwargs["Tags"] = _tag_list(props["Tags"])
        arn = self._clients("sns").create_topic(**kwargs)["TopicArn"]
        return arn, {"TopicArn": arn, "TopicName": name}

    def _subscription(self, logical: str, props: _Properties) -> tuple[str, dict[str, Any]]:
        arn = self._clients("sns").subscribe(
            TopicArn=props["TopicArn"], Protocol=props["Protocol"], Endpoint=props["Endpoint"]
        )["SubscriptionArn"]
        self.warn(f"{props['Protocol']} subscriptions are recorded; nothing is delivered locally", logical)
        return arn, {"Arn": arn}

    def _alarm(self, logical: str, props: _Properties) -> tuple[str, dict[str, Any]]:
        name = props.get("AlarmName") or self._name(logical, max_length=255)
        kwargs: dict[str, Any] = {"AlarmName": name}
        for key in (
            "AlarmDescription",
            "Namespace",
            "MetricName",
            "Dimensions",
            "Statistic",
            "ExtendedStatistic",
            "Period",
            "EvaluationPeriods",
            "DatapointsToAlarm",
            "Threshold",
            "ComparisonOperator",
            "TreatMissingData",
            "AlarmActions",
            "OKActions",
            "InsufficientDataActions",
            "ActionsEnabled",
            "Unit",
            "Metrics",
        ):
            if key in props:
                kwargs[key] = props[key]
        for key in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
            if key in kwargs:
                kwargs[key] = int(kwargs[key])
        if "Threshold" in kwargs:
            kwargs["Threshold"] = float(kwargs["Threshold"])
        if len(kwargs.get("Metrics", [])) > MAX_METRICS_PER_ALARM:
            raise ValueError(
                f"{logical}: CloudWatch takes at most {MAX_METRICS_PER_ALARM} metrics per alarm "
                f"(MetricDataQueries), this one has {len(kwargs['Metrics'])}; the deploy would roll back"
            )
        for query in kwargs.get("Metrics", []):
            if "MetricStat" in query:
                query["MetricStat"]["Period"] = int(query["MetricStat"]["Period"])
        self._check_alarm_can_notify(logical, _alarm_actions(kwargs))
        self._clients("cloudwatch").put_metric_alarm(**kwargs)
        self.warn("alarms are stored; no metrics are published locally, so they never fire", logical)
        return name, {"Arn": self._arn("cloudwatch", f"alarm:{name}")}

    def _composite_alarm(self, logical: str, props: _Properties) -> tuple[str, dict[str, Any]]:
        """Checked as CloudWatch checks it (rule size, alarms that exist); moto cannot store it."""
        name = props.get("AlarmName") or self._name(logical, max_length=255)
        rule = str(props["AlarmRule"])
        if len(rule) > MAX_ALARM_RULE_CHARS:
            raise ValueError(
                f"{logical}: AlarmRule has {len(rule)} characters, CloudWatch takes {MAX_ALARM_RULE_CHARS}"
            )
        named = set(re.findall(r"\b(?:ALARM|OK|INSUFFICIENT_DATA)\(\s*\"?([^)\"]+?)\"?\s*\)", rule))
        if not named:
            raise ValueError(f"{logical}: AlarmRule {rule!r} names no alarm")
        existing = {
            alarm["AlarmName"]
            for page in self._clients("cloudwatch").get_paginator("describe_alarms").paginate()
            for alarm in page["MetricAlarms"]
        }
        existing |= self._composite_alarms.keys()
        missing = {alarm.rpartition(":alarm:")[2] for alarm in named} - existing
        if missing:
            raise ValueError(
                f"{logical}: AlarmRule names alarms that do not exist: {', '.join(sorted(missing))}"
            )
        self._check_alarm_can_notify(logical, _alarm_actions(props))
        self._composite_alarms[name] = {
            key: props[key]
            for key in (
                "AlarmRule",
                "AlarmDescription",
                "AlarmActions",
                "OKActions",
                "InsufficientDataActions",
            )
            if key in props
        }
        self.warn("alarms are stored; no metrics are published locally, so they never fire", logical)
        return name, {"Arn": self._arn("cloudwatch", f"alarm:{name}")}

    def _dashboard(self, logical: str, props: _Properties) -> tuple[str, dict[str, Any]]:
        name = props.get("DashboardName") or self._name(logical, max_length=255)
        self._clients("cloudwatch").put_dashboard(DashboardName=name, DashboardBody=props["DashboardBody"])
        return name, {}

    # ------------------------------------------------------------ API Gateway (HTTP APIs)
    def _http_api(self, logical: str, props: _Properties) -> tuple[str, dict[str, Any]]:
        if "Body" not in props:
            self.warn("HTTP APIs without an OpenAPI Body are not emulated locally", logical)
            return self._name(logical), _Placeholder(self._name(logical))
        api = self._clients("apigatewayv2")
        body = dict(props["Body"])
        name = str(body.get("info", {}).get("title") or props.get("Name") or logical)
        kwargs: dict[str, Any] = {"Name": name, "ProtocolType": "HTTP"}
        cors = _http_api_cors(body.get("x-amazon-apigateway-cors"))
        if cors:
            kwargs["CorsConfiguration"] = cors
        tags = {t["name"]: t.get("x-amazon-apigateway-tag-value", "") for t in body.get("tags", [])}
        if "Tags" in props:
            tags.update(props["Tags"] if isinstance(props["Tags"], dict) else _tag_map(props["Tags"]))
        if tags:
            kwargs["Tags"] = tags
        if "DisableExecuteApiEndpoint" in props:
            kwargs["DisableExecuteApiEndpoint"] = bool(props["DisableExecuteApiEndpoint"])
        props.get("FailOnWarnings")
        api_id = api.create_api(**kwargs)["ApiId"]
        spec = HttpApiSpec(logical_id=logical, api_id=api_id, name=name, cors=cors or None)

        schemes = body.get("components", {}).get("securitySchemes", {})
        authorizer_ids: dict[str, str] = {}
        for scheme_name, scheme in schemes.items():
            authorizer = scheme.get("x-amazon-apigateway-authorizer", {})
            if authorizer.get("type") != "jwt":
                self.warn(
                    f"HTTP API authorizers of type {authorizer.get('type')!r} are not emulated locally",
                    logical,
                )
                continue
            jwt_config = authorizer["jwtConfiguration"]
            identity_source = authorizer.get("identitySource", "$request.header.Authorization")
            audiences = tuple(str(a) for a in jwt_config.get("audience", []))
            authorizer_ids[scheme_name] = api.create_authorizer(
                ApiId=api_id,
                Name=scheme_name,
                AuthorizerType="JWT",
                IdentitySource=[identity_source],
                JwtConfiguration={"Audience": list(audiences), "Issuer": jwt_config["issuer"]},
            )["AuthorizerId"]
            spec.authorizers[scheme_name] = JwtAuthorizerSpec(
                name=scheme_name,
                issuer=jwt_config["issuer"],
                audiences=audiences,
                identity_source=identity_source,
            )

        integration_ids: dict[tuple[str, str], str] = {}
        for path, methods in body.get("paths", {}).items():
            for method, operation in methods.items():
                integration = operation.get("x-amazon-apigateway-integration", {})
                function_arn = _integration_function(integration)
                if function_arn is None or integration.get("type", "aws_proxy").lower() != "aws_proxy":
                    self.warn(
                        "HTTP API integrations other than Lambda proxy are not emulated locally", logical
                    )
                    continue
                version = str(integration.get("payloadFormatVersion", "2.0"))
                key = (function_arn, version)
                if key not in integration_ids:
                    integration_ids[key] = api.create_integration(
                        ApiId=api_id,
                        IntegrationType="AWS_PROXY",
                        IntegrationUri=function_arn,
                        IntegrationMethod="POST",
                        PayloadFormatVersion=version,
                    )["IntegrationId"]
                authorizer_name, scopes = _route_security(operation.get("security"), body.get("security"))
                route = HttpRoute(
                    method="ANY" if method.lower() == "x-amazon-apigateway-any-method" else method.upper(),
                    path="$default" if path == "/$default" else path,
                    function_arn=function_arn,
                    payload_format_version=version,
                    authorizer=authorizer_name if authorizer_name in spec.authorizers else None,
                    scopes=scopes,
                )
                route_kwargs: dict[str, Any] = {
                    "ApiId": api_id,
                    "RouteKey": route.route_key,
                    "Target": f"integrations/{integration_ids[key]}",
                    "AuthorizationType": "JWT" if route.authorizer else "NONE",
                }
                if route.authorizer:
                    route_kwargs["AuthorizerId"] = authorizer_ids[route.authorizer]
                    if scopes:
                        route_kwargs["AuthorizationScopes"] = list(scopes)
                api.create_route(**route_kwargs)
                spec.routes.append(route)
        unknown = sorted(
            k for k in body if k.startswith("x-amazon-apigateway-") and k != "x-amazon-apigateway-cors"
        )
        for extension in unknown:
            self.warn(f"HTTP API OpenAPI extension {extension} is not emulated locally", logical)
        self.stack.http_apis[logical] = spec
        endpoint = f"https://{api_id}.execute-api.{self.stack.region}.amazonaws.com"
        if self._site is not None:
            self._local_origins[endpoint] = self._site.api_origin
            endpoint = self._site.api_origin
        return api_id, {"ApiId": api_id, "ApiEndpoint": endpoint}

    def _http_api_stage(self, logical: str, props: _Properties) -> tuple[str, dict[str, Any]]:
        api_id = props["ApiId"]
        stage_name = props["StageName"]
        kwargs: dict[str, Any] = {
            "ApiId": api_id,
            "StageName": stage_name,
            "AutoDeploy": bool(props.get("AutoDeploy", False)),
        }
        variables = {k: str(v) for k, v in props.get("StageVariables", {}).items()}
        if variables:
            kwargs["StageVariables"] = variables
        if "Tags" in props:
            kwargs["Tags"] = props["Tags"] if isinstance(props["Tags"], dict) else _tag_map(props["Tags"])
        settings = props.get("DefaultRouteSettings")
        if settings:
            kwargs["DefaultRouteSettings"] = settings
            if "ThrottlingBurstLimit" in settings or "ThrottlingRateLimit" in settings:
                self.warn("HTTP API stage throttling is not enforced locally", logical)
        if "AccessLogSettings" in props:
            self.warn("HTTP API access logs are not written locally", logical)
        self._clients("apigatewayv2").create_stage(**kwargs)
        for spec in self.stack.http_apis.values():
            if spec.api_id == api_id:
                spec.stages[stage_name] = variables
        return stage_name, {}

    # ------------------------------------------------------------ EventBridge Scheduler
    def _schedule(self, logical: str, props: _Properties) -> tuple[str, dict[str, Any]]:
        name = props.get("Name") or self._name(logical, max_length=64)
        target = dict(props["Target"])
        kwargs: dict[str, Any] = {
            "Name": name,
            "ScheduleExpression": props["ScheduleExpression"],
            "FlexibleTimeWindow": props.get("FlexibleTimeWindow", {"Mode": "OFF"}),
            "Target": target,
            "State": props.get("State", "ENABLED"),
        }
        for key in ("GroupName", "Description", "ScheduleExpressionTimezone", "StartDate", "EndDate"):
            if key in props:
                kwargs[key] = props[key]
        if "RetryPolicy" in target:
            target["RetryPolicy"] = {k: int(v) for k, v in target["RetryPolicy"].items()}
        arn = self._clients("scheduler").create_schedule(**kwargs)["ScheduleArn"]
        self._add_schedule(
            logical,
            ScheduleSpec(
                logical_id=logical,
                name=name,
                arn=arn,
                expression=str(props["ScheduleExpression"]),
                target={"Id": name, "Input": "{}", **target},
                enabled=kwargs["State"] == "ENABLED",
                scheduled_rule=False,
                timezone=props.get("ScheduleExpressionTimezone"),
                start_date=props.get("StartDate"),
                end_date=props.get("EndDate"),
            ),
        )
        return name, {"Arn": arn}

    # ------------------------------------------------------------ CloudFront
    def _distribution(self, logical: str, props: _Properties) -> tuple[str, dict[str, Any]]:
        props.items()
        physical = self._name(logical)
        if self._site is None:
            self.warn("CloudFront is not emulated locally", logical)
            return physical, _Placeholder(physical)
        self.warn(
            f"CloudFront is not emulated: the local web server serves the site at {self._site.web_origin}",
            logical,
        )
        return physical, {"DomainName": self._site.web_host, "Id": physical}

    def _cloudfront_part(self, logical: str, props: _Properties) -> tuple[str, dict[str, Any]]:
        props.items()
        physical = self._name(logical)
        site = (
            f": the local web server serves the site at {self._site.web_origin}" if self._site else " locally"
        )
        self.warn(f"CloudFront is not emulated{site}", logical)
        return physical, _Placeholder(physical)


class _Placeholder(dict[str, Any]):
    """Attributes of a resource that is not emulated: each reads as a recognisable local value."""

    def __init__(self, physical: str) -> None:
        super().__init__()
        self._physical = physical

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> str:
        if key.endswith("DomainName"):
            return "localhost"
        return f"{self._physical}.{key}"


def _http_api_cors(cors: dict[str, Any] | None) -> dict[str, Any]:
    if not cors:
        return {}
    names = {
        "allowOrigins": "AllowOrigins",
        "allowHeaders": "AllowHeaders",
        "allowMethods": "AllowMethods",
        "exposeHeaders": "ExposeHeaders",
        "maxAge": "MaxAge",
        "allowCredentials": "AllowCredentials",
    }
    converted = {names[key]: value for key, value in cors.items() if key in names}
    if "MaxAge" in converted:
        converted["MaxAge"] = int(converted["MaxAge"])
    return converted


def _integration_function(integration: dict[str, Any]) -> str | None:
    uri = str(integration.get("uri", ""))
    if ":lambda:path/2015-03-31/functions/" in uri:
        return uri.split("/functions/", 1)[1].removesuffix("/invocations")
    if uri.startswith("arn:") and ":lambda:" in uri and ":function:" in uri:
        return uri
    return None


def _route_security(
    operation: Iterable[dict[str, Any]] | None, default: Iterable[dict[str, Any]] | None
) -> tuple[str | None, tuple[str, ...]]:
    requirements = list(operation if operation is not None else default or [])
    for requirement in requirements:
        for name, scopes in requirement.items():
            if name == "NONE":
                return None, ()
            return name, tuple(scopes or ())
    return None, ()


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {"ID": rule.get("Id", "rule"), "Status": rule["Status"]}
    converted["Filter"] = {"Prefix": rule.get("Prefix", "")}
    if "ExpirationInDays" in rule:
        converted["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "NoncurrentVersionExpiration" in rule:
        converted["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
        }
    if "ExpiredObjectDeleteMarker" in rule:
        if "ExpirationInDays" in rule:
            # S3 refuses the pair: a delete marker expires on its own rule, not after a number of days.
            raise ValueError(
                f"lifecycle rule {converted['ID']}: ExpiredObjectDeleteMarker with ExpirationInDays"
            )
        converted["Expiration"] = {"ExpiredObjectDeleteMarker": bool(rule["ExpiredObjectDeleteMarker"])}
    if "AbortIncompleteMultipartUpload" in rule:
        converted["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        }
    return converted


def _cors_rule(rule: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {
        "AllowedMethods": rule["AllowedMethods"],
        "AllowedOrigins": rule["AllowedOrigins"],
    }
    if "AllowedHeaders" in rule:
        converted["AllowedHeaders"] = rule["AllowedHeaders"]
    if "ExposedHeaders" in rule:
        converted["ExposeHeaders"] = rule["ExposedHeaders"]
    if "MaxAge" in rule:
        converted["MaxAgeSeconds"] = int(rule["MaxAge"])
    return converted


def _alarm_actions(alarm: dict[str, Any]) -> list[str]:
    return [
        *alarm.get("AlarmActions", []),
        *alarm.get("OKActions", []),
        *alarm.get("InsufficientDataActions", []),
    ]


def _key_policy_allows_cloudwatch(policy_text: str) -> bool:
    """Whether Allow statements for cloudwatch.amazonaws.com cover both actions an alarm's publish needs."""
    needed = {"kms:Decrypt", "kms:GenerateDataKey"}
    for statement in json.loads(policy_text).get("Statement", []):
        services = statement.get("Principal", {}).get("Service", [])
        services = [services] if isinstance(services, str) else services
        if statement.get("Effect") != "Allow" or "cloudwatch.amazonaws.com" not in services:
            continue
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        needed = {n for n in needed if not any(fnmatch.fnmatchcase(n, a) for a in actions)}
    return not needed


def _placeholder_zip() -> bytes:
    """Lambda wants a package; the runner loads code from the template's CodeUri instead."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "filepipe runs this function from its local CodeUri.\n")
    return buffer.getvalue()


def provision(
    clients: ClientFactory,
    template: Template,
    stack_name: str,
    region: str = "us-east-1",
    parameters: dict[str, str] | None = None,
    *,
    site: LocalSite | None = None,
    create_event_source_mappings: bool = False,
    iam_enforced: bool = False,
) -> Stack:
    """Create the whole stack; returns it with the warnings for everything not emulated.

    ``site`` says where a local runtime serves the web UI and the HTTP APIs. With
    ``create_event_source_mappings`` the SQS mappings are created too: only for a caller that polls the
    queues itself and has stopped moto from invoking mapped functions on its own. ``iam_enforced``
    says the caller evaluates IAM on every request, so resource policies are stored whole.
    """
    stack = Stack(
        name=stack_name,
        region=region,
        template=template,
        parameters=template.parameter_values(parameters),
    )
    return Provisioner(clients, stack, site, create_event_source_mappings, iam_enforced).run()
