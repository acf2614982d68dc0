"""Run a template function's handler the way Lambda does: context object, errors as Lambda shapes them."""

from __future__ import annotations

import importlib
import json
import time
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any

from filepipe.local.stack.model import FunctionSpec


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_seconds: int
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = ""
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = f"local/{self.aws_request_id}"
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def context_for(spec: FunctionSpec) -> LambdaContext:
    return LambdaContext(
        function_name=spec.name,
        invoked_function_arn=spec.arn,
        memory_limit_in_mb=spec.memory_mb,
        timeout_seconds=spec.timeout,
    )


def error_payload(error: BaseException) -> dict[str, Any]:
    """The body Lambda returns for an unhandled exception (errorType is the class name)."""
    return {
        "errorType": type(error).__name__,
        "errorMessage": str(error),
        "requestId": "",
        "stackTrace": traceback.format_tb(error.__traceback__),
    }


def timeout_payload(request_id: str, seconds: int) -> dict[str, Any]:
    """What Lambda returns when a function runs out of time."""
    return {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {request_id} Error: Task timed out after {seconds:.2f} seconds",
    }


def load_handler(handler: str) -> Any:
    module_name, _, function_name = handler.rpartition(".")
    return getattr(importlib.import_module(module_name), function_name)


@dataclass(frozen=True)
class InvokeResult:
    payload: bytes
    function_error: str | None


def invoke_in_process(spec: FunctionSpec, event: Any) -> InvokeResult:
    """Call the handler in this process (its code must be importable); errors come back as Lambda's."""
    context = context_for(spec)
    try:
        result = load_handler(spec.handler)(event, context)
    except Exception as error:
        body = error_payload(error)
        body["requestId"] = context.aws_request_id
        return InvokeResult(json.dumps(body).encode(), "Unhandled")
    return InvokeResult(json.dumps(result).encode(), None)
