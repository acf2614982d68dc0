"""Step Functions adapter: complete a waiting task by its token (SendTaskSuccess / SendTaskFailure)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from common.aws import THROTTLING_CODES, error_code
from common.errors import ServiceThrottled

# What SendTaskSuccess and SendTaskFailure answer for a token whose task is over (ended, timed out, or
# gone with its execution): nothing is left to complete, which is not a failure of the verdict.
CLOSED_TASK_CODES = frozenset({"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"})
# SendTaskFailure's limits (API reference): error up to 256 characters, cause up to 32,768.
MAX_ERROR = 256
MAX_CAUSE = 32768


class StepFunctionsTasks:
    """Callbacks through an injected boto3 Step Functions client."""

    def __init__(self, stepfunctions: Any) -> None:
        self._sfn = stepfunctions

    def _send(self, operation: str, **kwargs: Any) -> bool:
        try:
            getattr(self._sfn, operation)(**kwargs)
        except Exception as error:
            code = error_code(error)
            if code in CLOSED_TASK_CODES:
                return False
            if code in THROTTLING_CODES:
                raise ServiceThrottled(f"Step Functions throttled {operation}") from error
            raise
        return True

    def succeed(self, token: str, output: Mapping[str, Any]) -> bool:
        return self._send("send_task_success", taskToken=token, output=json.dumps(dict(output)))

    def fail(self, token: str, error: str, cause: str) -> bool:
        return self._send(
            "send_task_failure", taskToken=token, error=error[:MAX_ERROR], cause=cause[:MAX_CAUSE]
        )
