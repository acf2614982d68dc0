"""Lambda resources: functions (checked against Lambda's quotas), layers, permissions, SQS mappings."""

from __future__ import annotations

import hashlib
import io
import platform
import sys
import zipfile
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from filepipe.local.services.awslambda import quotas as lambda_quotas
from filepipe.local.stack.context import Created, Properties, Provisioning, ServiceHandlers
from filepipe.local.stack.model import EventSourceMappingSpec, FunctionSpec
from filepipe.local.stack.tags import tag_map

_HOST_ARCHITECTURE = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(
    platform.machine().lower(), platform.machine().lower()
)
# Functions run on the interpreter that runs the local runtime, with packages installed for it.
_HOST_PYTHON = f"python{sys.version_info.major}.{sys.version_info.minor}"

HANDLERS = ServiceHandlers()


@HANDLERS.register("AWS::Lambda::Function")
def create_function(provisioning: Provisioning, logical: str, props: Properties) -> Created:
    name = props.get("FunctionName") or provisioning.name(logical, max_length=64)
    environment = {k: str(v) for k, v in props.get("Environment", {}).get("Variables", {}).items()}
    code_path = provisioning.stack.template.code_paths.get(logical)
    props.get("Code")  # the runner loads the code from the template's CodeUri
    if code_path is None:
        raise ValueError(f"{logical}: no local code path (not an AWS::Serverless::Function?)")
    # A container image function runs here from its build context's code (the template's CodeUri folder)
    # with the handler its ImageConfig.Command names; the image itself is not built.
    image = props.get("PackageType") == "Image"
    handler = props.get("ImageConfig", {}).get("Command", [""])[0] if image else props["Handler"]
    if image:
        provisioning.warn("container image functions run from their code folder; no image is built", logical)
    runtime = props.get("Runtime", "python3.12")
    timeout = int(props.get("Timeout", 3))
    memory = int(props.get("MemorySize", 128))
    kwargs: dict[str, Any] = {
        "FunctionName": name,
        "Runtime": runtime,
        "Role": props["Role"],
        "Handler": handler,
        "Code": {"ZipFile": _placeholder_zip()},
        "Timeout": timeout,
        "MemorySize": memory,
        "Environment": {"Variables": environment},
        "Description": props.get("Description", ""),
    }
    if "Tags" in props:
        kwargs["Tags"] = tag_map(props["Tags"])
    if "Architectures" in props:
        kwargs["Architectures"] = props["Architectures"]
        if props["Architectures"] != [_HOST_ARCHITECTURE]:
            provisioning.warn(f"functions run on this machine's architecture ({_HOST_ARCHITECTURE})", logical)
    if runtime != _HOST_PYTHON:
        provisioning.warn(f"functions run on this machine's Python ({_HOST_PYTHON})", logical)
    if "EphemeralStorage" in props:
        kwargs["EphemeralStorage"] = {"Size": int(props["EphemeralStorage"]["Size"])}
        provisioning.warn("EphemeralStorage is recorded; /tmp is not size-limited locally", logical)
    if "TracingConfig" in props:
        kwargs["TracingConfig"] = props["TracingConfig"]
        if props["TracingConfig"].get("Mode") == "Active":
            provisioning.warn("X-Ray tracing is not emulated locally", logical)
    if props.get("Layers"):
        kwargs["Layers"] = props["Layers"]
        provisioning.warn("layers are not mounted locally (the local runtime supplies clamd itself)", logical)
    _check_function(logical, kwargs)
    response = provisioning.client("lambda").create_function(**kwargs)
    reserved = props.get("ReservedConcurrentExecutions")
    if reserved is not None:
        try:
            provisioning.client("lambda").put_function_concurrency(
                FunctionName=name, ReservedConcurrentExecutions=int(reserved)
            )
        except ClientError as error:  # the local runtime's Lambda holds the account's concurrency quota
            refusal = error.response["Error"]
            raise ValueError(
                f"{logical}: Lambda refuses ReservedConcurrentExecutions {reserved} ({refusal['Code']}): "
                f"{refusal['Message']}"
            ) from error
    provisioning.stack.functions[logical] = FunctionSpec(
        logical_id=logical,
        name=name,
        arn=response["FunctionArn"],
        handler=handler,
        code_path=code_path,
        runtime=runtime,
        timeout=timeout,
        memory_mb=memory,
        environment=environment,
        reserved_concurrency=int(reserved) if reserved is not None else None,
    )
    return name, {"Arn": response["FunctionArn"]}


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


@HANDLERS.register("AWS::Lambda::LayerVersion")
def create_layer_version(provisioning: Provisioning, logical: str, props: Properties) -> Created:
    # Published with placeholder content: layers are never mounted locally; functions using one say so.
    props.get("Content")
    kwargs: dict[str, Any] = {
        "LayerName": props.get("LayerName") or provisioning.name(logical, max_length=64),
        "Content": {"ZipFile": _placeholder_zip()},
    }
    for key in ("Description", "CompatibleRuntimes", "CompatibleArchitectures", "LicenseInfo"):
        if key in props:
            kwargs[key] = props[key]
    arn = provisioning.client("lambda").publish_layer_version(**kwargs)["LayerVersionArn"]
    return arn, {"Arn": arn}


@HANDLERS.register("AWS::Lambda::Permission")
def create_permission(provisioning: Provisioning, logical: str, props: Properties) -> Created:
    kwargs: dict[str, Any] = {
        "FunctionName": props["FunctionName"],
        "StatementId": logical,
        "Action": props["Action"],
        "Principal": props["Principal"],
    }
    for key in ("SourceArn", "SourceAccount", "EventSourceToken", "PrincipalOrgID"):
        if key in props:
            kwargs[key] = props[key]
    provisioning.client("lambda").add_permission(**kwargs)
    if not provisioning.iam_enforced:
        provisioning.warn("Lambda resource policies are stored but not enforced locally", logical)
    return logical, {}


@HANDLERS.register("AWS::Lambda::EventSourceMapping")
def create_event_source_mapping(provisioning: Provisioning, logical: str, props: Properties) -> Created:
    source = props["EventSourceArn"]
    if source.split(":")[2] != "sqs":
        provisioning.warn("event source mappings other than SQS are not emulated locally", logical)
        return provisioning.name(logical), {}
    if "FilterCriteria" in props:
        provisioning.warn("event source mapping FilterCriteria are not applied locally", logical)
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
    if provisioning.create_event_source_mappings:
        mapping_id = provisioning.client("lambda").create_event_source_mapping(**kwargs)["UUID"]
    else:
        # moto invokes a mapped function itself when a message arrives (with Docker); only a caller
        # that polls the queue (the local runtime) asks for the mapping to be created.
        mapping_id = hashlib.sha256(f"{provisioning.stack.name}/{logical}".encode()).hexdigest()[:32]
        provisioning.warn(
            "event source mappings are recorded, not created (this caller polls no queue)", logical
        )
    provisioning.stack.event_source_mappings[logical] = EventSourceMappingSpec(
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


def _placeholder_zip() -> bytes:
    """Lambda wants a package; the runner loads code from the template's CodeUri instead."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "filepipe runs this function from its local CodeUri.\n")
    return buffer.getvalue()
