"""Powertools logger and metrics shared by all functions, keyed by file id and execution name."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics

logger = Logger()
metrics = Metrics(namespace="filepipe")


def bind_file(state: dict[str, Any]) -> None:
    """Put the file id and execution name on every following log line of this invocation."""
    file = state.get("file") or {}
    logger.append_keys(fileId=file.get("fileId"), executionName=state.get("executionName"))
