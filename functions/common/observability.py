"""Powertools logger and metrics shared by all functions, keyed by file id and execution name."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger()
NAMESPACE = "filepipe"
metrics = Metrics(namespace=NAMESPACE)

Handler = TypeVar("Handler", bound=Callable[..., Any])


def bind_file(state: dict[str, Any]) -> None:
    """Put the file id and execution name on every following log line of this invocation."""
    file = state.get("file") or {}
    logger.append_keys(fileId=file.get("fileId"), executionName=state.get("executionName"))


def instrumented(step: str) -> Callable[[Handler], Handler]:
    """Wrap a handler: context in every log line, metrics flushed, and the step's duration recorded."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def timed(event: Any, context: Any) -> Any:
            started = time.perf_counter()
            # log_metrics does not clear what it skips publishing (POWERTOOLS_METRICS_DISABLED), and
            # several handlers share one process locally: start each invocation from a clean set.
            metrics.clear_metrics()
            metrics.add_dimension(name="step", value=step)
            try:
                return handler(event, context)
            finally:
                elapsed_ms = (time.perf_counter() - started) * 1000
                metrics.add_metric(name="StepDuration", unit=MetricUnit.Milliseconds, value=elapsed_ms)

        wrapped = metrics.log_metrics(logger.inject_lambda_context(timed))
        return functools.wraps(handler)(wrapped)  # type: ignore[return-value]

    return decorate
