"""Create every resource of the transformed template through the services' public APIs."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filepipe.template import PSEUDO_ACCOUNT_ID, Resolver, Template, references, substitute_definition

ClientFactory = Callable[[str], Any]


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
    outputs: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def function_by_name(self, name_or_arn: str) -> FunctionSpec:
        name = name_or_arn.split(":function:")[-1].split(":")[0]
        for spec in self.functions.values():
            if name in (spec.name, spec.logical_id):
                return spec
        raise KeyError(f"no function {name_or_arn!r} in stack {self.name}")


class Provisioner:
    """Walks resources in dependency order and creates each with the matching service API."""

    def __init__(self, clients: ClientFactory, stack: Stack) -> None:
        self._clients = clients
        self.stack = stack
        self._resolve = Resolver(
            stack.parameters,
            {
                "AWS::Region": stack.region,
                "AWS::AccountId": PSEUDO_ACCOUNT_ID,
                "AWS::StackName": stack.name,
                "AWS::StackId": f"arn:aws:cloudformation:{stack.region}:{PSEUDO_ACCOUNT_ID}:stack/{stack.name}/local",
                "AWS::Partition": "aws",
                "AWS::URLSuffix": "amazonaws.com",
                "AWS::NoValue": "",
            },
            self._ref,
            self._get_att,
            stack.template.conditions,
        )
        self.handlers: dict[str, Callable[[str, dict[str, Any]], tuple[str, dict[str, Any]]]] = {
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
            "AWS::StepFunctions::StateMachine": self._state_machine,
            "AWS::Logs::LogGroup": self._log_group,
            "AWS::Cognito::UserPool": self._user_pool,
            "AWS::Cognito::UserPoolClient": self._user_pool_client,
            "AWS::SNS::Topic": self._topic,
            "AWS::SNS::Subscription": self._subscription,
            "AWS::CloudWatch::Alarm": self._alarm,
            "AWS::CloudWatch::Dashboard": self._dashboard,
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

    def warn(self, message: str) -> None:
        self.stack.warnings.append(message)

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

    def run(self) -> Stack:
        for logical in self.order():
            resource = self.stack.template.resources[logical]
            if "Condition" in resource and not self._resolve.condition(resource["Condition"]):
                continue
            properties = self._resolve(resource.get("Properties", {}))
            handler = self.handlers.get(resource["Type"])
            if handler is None:
                physical, attributes = self._not_emulated(logical, resource["Type"])
            else:
                physical, attributes = handler(logical, properties)
            self.stack.physical[logical] = physical
            self.stack.attributes[logical] = attributes
        self.stack.outputs = {
            name: self._resolve(spec["Value"])
            for name, spec in self.stack.template.outputs.items()
            if "Condition" not in spec or self._resolve.condition(spec["Condition"])
        }
        return self.stack

    def _not_emulated(self, logical: str, resource_type: str) -> tuple[str, dict[str, Any]]:
        self.warn(f"{logical} ({resource_type}) is not emulated locally")
        physical = self._name(logical)
        return physical, _Placeholder(physical)

    # ------------------------------------------------------------ S3
    def _bucket(self, logical: str, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
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
        if "CorsConfiguration" in props:
            s3.put_bucket_cors(
                Bucket=name,
                CORSConfiguration={
                    "CORSRules": [_cors_rule(rule) for rule in props["CorsConfiguration"]["CorsRules"]]
                },
            )
        notifications = props.get("NotificationConfiguration", {})
        if notifications.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
            s3.put_bucket_notification_configuration(
                Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
            )
        for unsupported in set(notifications) - {"EventBridgeConfiguration"}:
            self.warn(f"{logical}: NotificationConfiguration.{unsupported} is not emulated locally")
        return name, {
            "Arn": f"arn:aws:s3:::{name}",
            "DomainName": f"{name}.s3.amazonaws.com",
            "RegionalDomainName": f"{name}.s3.{self.stack.region}.amazonaws.com",
        }

    def _bucket_policy(self, logical: str, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        self._clients("s3").put_bucket_policy(
            Bucket=props["Bucket"], Policy=json.dumps(props["PolicyDocument"])
        )
        self.warn(f"{logical}: bucket policies are stored but not enforced locally")
        return props["Bucket"], {}

    # ------------------------------------------------------------ DynamoDB
    def _table(self, logical: str, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        dynamodb = self._clients("dynamodb")
        name = props.get("TableName") or self._name(logical, max_length=255)
        kwargs: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        if "GlobalSecondaryIndexes" in props:
            kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        if "ProvisionedThroughput" in props:
            kwargs["ProvisionedThroughput"] = {k: int(v) for k, v in props["ProvisionedThroughput"].items()}
        if "SSESpecification" in props:
            kwargs["SSESpecification"] = {"Enabled": bool(props["SSESpecification"].get("SSEEnabled"))}
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
            self.warn(
                f"{logical}: TTL ({ttl['AttributeName']}) is recorded; expired items are not deleted locally"
            )
        pitr = props.get("PointInTimeRecoverySpecification", {})
        if pitr.get("PointInTimeRecoveryEnabled"):
            dynamodb.update_continuous_backups(
                TableName=name,
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
            )
        return name, {"Arn": description["TableArn"], "StreamArn": description.get("LatestStreamArn", "")}

    # ------------------------------------------------------------ SQS
    def _queue(self, logical: str, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        sqs = self._clients("sqs")
        name = props.get("QueueName") or self._name(logical, max_length=80)
        attributes = {
            key: json.dumps(value)
            if isinstance(value, dict)
            else str(value).lower()
            if isinstance(value, bool)
            else str(value)
            for key, value in props.items()
            if key not in {"QueueName", "Tags"}
        }
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        return url, {"Arn": self._arn("sqs", name), "QueueName": name, "QueueUrl": url}

    def _queue_policy(self, logical: str, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        sqs = self._clients("sqs")
        for url in props["Queues"]:
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(props["PolicyDocument"])})
        self.warn(f"{logical}: queue policies are stored but not enforced locally")
        return self._name(logical), {}

    # ------------------------------------------------------------ EventBridge
    def _event_bus(self, logical: str, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        response = self._clients("events").create_event_bus(Name=props["Name"])
        return props["Name"], {"Arn": response["EventBusArn"], "Name": props["Name"]}

    def _rule(self, logical: str, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        events = self._clients("events")
        name = props.get("Name") or self._name(logical, max_length=64)
        bus = props.get("EventBusName", "default")
        kwargs: dict[str, Any] = {"Name": name, "EventBusName": bus, "State": props.get("State", "ENABLED")}
        if "EventPattern" in props:
            kwargs["EventPattern"] = json.dumps(props["EventPattern"])
        if "ScheduleExpression" in props:
            kwargs["ScheduleExpression"] = props["ScheduleExpression"]
        if "Description" in props:
            kwargs["Description"] = props["Description"]
        arn = events.put_rule(**kwargs)["RuleArn"]
        targets = [dict(target) for target in props.get("Targets", [])]
        if targets:
            events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
        return name, {"Arn": arn}

    # ------------------------------------------------------------ IAM
    def _role(self, logical: str, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        iam = self._clients("iam")
        name = props.get("RoleName") or self._name(logical, max_length=64)
        arn = iam.create_role(
            RoleName=name, AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"])
        )["Role"]["Arn"]
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
                self.warn(f"{logical}: managed policy {policy_arn} is unknown locally and not attached")
        return name, {"Arn": arn, "RoleId": name}

    # ------------------------------------------------------------ Lambda
    def _function(self, logical: str, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        name = props.get("FunctionName") or self._name(logical, max_length=64)
        environment = {k: str(v) for k, v in props.get("Environment", {}).get("Variables", {}).items()}
        code_path = self.stack.template.code_paths.get(logical)
        if code_path is None:
            raise ValueError(f"{logical}: no local code path (not an AWS::Serverless::Function?)")
        response = self._clients("lambda").create_function(
            FunctionName=name,
            Runtime=props.get("Runtime", "python3.12"),
            Role=props["Role"],
            Handler=props["Handler"],
            Code={"ZipFile": _placeholder_zip()},
            Timeout=int(props.get("Timeout", 3)),
            MemorySize=int(props.get("MemorySize", 128)),
            Environment={"Variables": environment},
            Description=props.get("Description", ""),
        )
        self.stack.functions[logical] = FunctionSpec(
            logical_id=logical,
            name=name,
            arn=response["FunctionArn"],
            handler=props["Handler"],
            code_path=code_path,
            runtime=props.get("Runtime", "python3.12"),
            timeout=int(props.get("Timeout", 3)),
            memory_mb=int(props.get("MemorySize", 128)),
            environment=environment,
        )
        if props.get("Layers"):
            self.warn(f"{logical}: layers are not mounted locally (the local runtime supplies clamd itself)")
        return name, {"Arn": response["FunctionArn"]}

    def _layer(self, logical: str, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        arn = self._arn("lambda", f"layer:{self._name(logical, max_length=64)}:1")
        return arn, {"Arn": arn}

    # ------------------------------------------------------------ Step Functions
    def _state_machine(self, logical: str, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
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
        arn = self._clients("stepfunctions").create_state_machine(**kwargs)["stateMachineArn"]
        if "LoggingConfiguration" in props:
            self.warn(f"{logical}: execution logging to CloudWatch Logs is not emulated locally")
        return arn, {"Arn": arn, "Name": name}

    def _log_group(self, logical: str, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        logs = self._clients("logs")
        name = props.get("LogGroupName") or self._name(logical, max_length=512)
        logs.create_log_group(logGroupName=name)
        if "RetentionInDays" in props:
            logs.put_retention_policy(logGroupName=name, retentionInDays=int(props["RetentionInDays"]))
        return name, {"Arn": self._arn("logs", f"log-group:{name}:*")}

    # ------------------------------------------------------------ Cognito
    def _user_pool(self, logical: str, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "PoolName": props.get("UserPoolName") or self._name(logical, max_length=128)
        }
        for key in ("UsernameAttributes", "AutoVerifiedAttributes", "Policies", "AccountRecoverySetting"):
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

    def _user_pool_client(self, logical: str, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
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
        ):
            if key in props:
                kwargs[key] = props[key]
        client = self._clients("cognito-idp").create_user_pool_client(**kwargs)["UserPoolClient"]
        return client["ClientId"], {"ClientId": client["ClientId"]}

    # ------------------------------------------------------------ SNS and CloudWatch
    def _topic(self, logical: str, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        name = props.get("TopicName") or self._name(logical, max_length=256)
        arn = self._clients("sns").create_topic(Name=name)["TopicArn"]
        return arn, {"TopicArn": arn, "TopicName": name}

    def _subscription(self, logical: str, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        arn = self._clients("sns").subscribe(
            TopicArn=props["TopicArn"], Protocol=props["Protocol"], Endpoint=props["Endpoint"]
        )["SubscriptionArn"]
        self.warn(f"{logical}: {props['Protocol']} subscriptions are recorded; nothing is delivered locally")
        return arn, {"Arn": arn}

    def _alarm(self, logical: str, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        name = props.get("AlarmName") or self._name(logical, max_length=255)
        kwargs: dict[str, Any] = {"AlarmName": name}
        for key in (
            "AlarmDescription",
            "Namespace",
            "MetricName",
            "Dimensions",
            "Statistic",
            "Period",
            "EvaluationPeriods",
            "Threshold",
            "ComparisonOperator",
            "TreatMissingData",
            "AlarmActions",
            "OKActions",
            "Metrics",
        ):
            if key in props:
                kwargs[key] = props[key]
        for key in ("Period", "EvaluationPeriods"):
            if key in kwargs:
                kwargs[key] = int(kwargs[key])
        if "Threshold" in kwargs:
            kwargs["Threshold"] = float(kwargs["Threshold"])
        for query in kwargs.get("Metrics", []):
            if "MetricStat" in query:
                query["MetricStat"]["Period"] = int(query["MetricStat"]["Period"])
        self._clients("cloudwatch").put_metric_alarm(**kwargs)
        self.warn(f"{logical}: alarms are stored; no metrics are published locally, so they never fire")
        return name, {"Arn": self._arn("cloudwatch", f"alarm:{name}")}

    def _dashboard(self, logical: str, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        name = props.get("DashboardName") or self._name(logical, max_length=255)
        self._clients("cloudwatch").put_dashboard(DashboardName=name, DashboardBody=props["DashboardBody"])
        return name, {}


class _Placeholder(dict):  # type: ignore[type-arg]
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


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {"ID": rule.get("Id", "rule"), "Status": rule["Status"]}
    converted["Filter"] = {"Prefix": rule.get("Prefix", "")}
    if "ExpirationInDays" in rule:
        converted["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "NoncurrentVersionExpiration" in rule:
        converted["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
        }
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
) -> Stack:
    """Create the whole stack; returns it with the warnings for everything not emulated."""
    stack = Stack(
        name=stack_name,
        region=region,
        template=template,
        parameters=template.parameter_values(parameters),
    )
    return Provisioner(clients, stack).run()
