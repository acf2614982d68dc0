"""Lambda handler: SQS batch of upload events -> StartExecution, reporting per-message failures."""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field

from common.aws import client, error_code
from common.observability import instrumented, logger
from common.settings import EnvSettings, load_settings
from start.logic import parse_message_body, start_request


class StartSettings(EnvSettings):
    state_machine_arn: str = Field(alias="STATE_MACHINE_ARN", min_length=1)


@instrumented("start")
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = load_settings(StartSettings)
    stepfunctions = client("stepfunctions")
    failures = []
    for record in event.get("Records", []):
        try:
            request = start_request(parse_message_body(record["body"]))
        except (ValueError, KeyError) as error:
            # A malformed event will never start; reporting it as failed sends it on to the DLQ.
            logger.error(
                "unusable upload event", extra={"messageId": record["messageId"], "reason": str(error)}
            )
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        try:
            stepfunctions.start_execution(
                stateMachineArn=settings.state_machine_arn,
                name=request.execution_name,
                input=json.dumps(request.input),
            )
            logger.info("execution started", extra={"executionName": request.execution_name})
        except Exception as error:
            if error_code(error) == "ExecutionAlreadyExists":
                logger.info("duplicate upload event ignored", extra={"executionName": request.execution_name})
                continue
            logger.exception("could not start execution", extra={"executionName": request.execution_name})
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
