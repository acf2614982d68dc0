"""Lambda's function quotas and runtime deprecations, refused as CreateFunction refuses them."""

from __future__ import annotations

import functools
import importlib.util
import json
from datetime import date
from pathlib import Path
from typing import Any

MIN_MEMORY_MB = 128
MAX_MEMORY_MB = 10240
MAX_TIMEOUT_SECONDS = 900
MIN_EPHEMERAL_STORAGE_MB = 512
MAX_EPHEMERAL_STORAGE_MB = 10240
# All of a function's variables together, measured as Lambda measures them: the JSON of the map.
MAX_ENVIRONMENT_BYTES = 4096
# Lambda keeps this much of the account's concurrency unreserved (all of it when the quota is lower).
MIN_UNRESERVED_CONCURRENCY = 100
# A new account's concurrent executions quota; AWS raises it as the account is used (the default is 1,000).
NEW_ACCOUNT_CONCURRENCY_QUOTA = 10


class LambdaRefusal(ValueError):
    """What Lambda answers to a function configuration it refuses: its error code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _validation(value: Any, member: str, constraint: str) -> LambdaRefusal:
    return LambdaRefusal(
        "ValidationException",
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: "
        f"Member must {constraint}",
    )


def _runtime_lifecycle_file() -> Path:
    # cfn-lint carries AWS's runtime deprecation table as data; the file is read without importing cfn-lint,
    # whose import costs half a second of start-up.
    spec = importlib.util.find_spec("cfnlint")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("cfn-lint is not installed: it holds Lambda's runtime deprecation table")
    package = Path(next(iter(spec.submodule_search_locations)))
    return package / "data" / "AdditionalSpecs" / "LmbdRuntimeLifecycle.json"


@functools.cache
def runtime_lifecycle() -> dict[str, dict[str, str | None]]:
    """Each deprecated or dated runtime: ``deprecated``, ``create-block``, ``update-block``, ``successor``."""
    table: dict[str, dict[str, str | None]] = json.loads(_runtime_lifecycle_file().read_text())
    return table


@functools.cache
def _known_runtimes() -> frozenset[str]:
    import botocore.loaders

    model = botocore.loaders.create_loader().load_service_model("lambda", "service-2")
    return frozenset(model["shapes"]["Runtime"]["enum"])


def check_runtime(runtime: str, today: date) -> None:
    """Refuse a runtime Lambda does not know, or one it no longer lets functions be created with."""
    known = _known_runtimes()
    if runtime not in known:
        raise _validation(runtime, "runtime", f"satisfy enum value set: [{', '.join(sorted(known))}]")
    lifecycle = runtime_lifecycle().get(runtime, {})
    blocked = lifecycle.get("create-block")
    if blocked and date.fromisoformat(blocked) <= today:
        raise LambdaRefusal(
            "InvalidParameterValueException",
            f"The runtime parameter of {runtime} is no longer supported for creating or updating AWS Lambda "
            f"functions. We recommend you use the new runtime ({lifecycle.get('successor')}) while creating "
            "or updating functions.",
        )


def check_configuration(
    memory_mb: int, timeout_seconds: int, ephemeral_storage_mb: int | None, environment: dict[str, str]
) -> None:
    """Refuse memory, timeout, /tmp size or environment variables beyond Lambda's limits."""
    if memory_mb < MIN_MEMORY_MB:
        raise _validation(memory_mb, "memorySize", f"have value greater than or equal to {MIN_MEMORY_MB}")
    if memory_mb > MAX_MEMORY_MB:
        raise LambdaRefusal(
            "InvalidParameterValueException",
            f"'MemorySize' value failed to satisfy constraint: Member must have value less than or equal to "
            f"{MAX_MEMORY_MB}",
        )
    if timeout_seconds < 1:
        raise _validation(timeout_seconds, "timeout", "have value greater than or equal to 1")
    if timeout_seconds > MAX_TIMEOUT_SECONDS:
        raise _validation(
            timeout_seconds, "timeout", f"have value less than or equal to {MAX_TIMEOUT_SECONDS}"
        )
    if ephemeral_storage_mb is not None and ephemeral_storage_mb < MIN_EPHEMERAL_STORAGE_MB:
        raise _validation(
            ephemeral_storage_mb,
            "ephemeralStorage.size",
            f"have value greater than or equal to {MIN_EPHEMERAL_STORAGE_MB}",
        )
    if ephemeral_storage_mb is not None and ephemeral_storage_mb > MAX_EPHEMERAL_STORAGE_MB:
        raise _validation(
            ephemeral_storage_mb,
            "ephemeralStorage.size",
            f"have value less than or equal to {MAX_EPHEMERAL_STORAGE_MB}",
        )
    measured = json.dumps(environment, separators=(",", ":"), ensure_ascii=False)
    if len(measured.encode()) > MAX_ENVIRONMENT_BYTES:
        raise LambdaRefusal(
            "InvalidParameterValueException",
            "Lambda was unable to configure your environment variables because the environment variables "
            f"you have provided exceeded the 4KB limit. String measured: {measured}",
        )


def minimum_unreserved(quota: int) -> int:
    """The concurrency Lambda keeps unreserved in an account with this concurrent executions quota."""
    return min(MIN_UNRESERVED_CONCURRENCY, quota)


def check_reservation(quota: int, reserved_by_others: int, reserved: int) -> None:
    """Refuse a reservation that leaves less unreserved concurrency than Lambda keeps."""
    if quota - reserved_by_others - reserved < minimum_unreserved(quota):
        raise LambdaRefusal(
            "InvalidParameterValueException",
            "Specified ReservedConcurrentExecutions for function decreases account's "
            f"UnreservedConcurrentExecution below its minimum value of [{minimum_unreserved(quota)}].",
        )
