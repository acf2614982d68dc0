"""Lambda handler: SQS batch of upload events -> StartExecution, each message failing only itself."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import Field

from common.aws import client, error_code
from common.observability import instrumented, logger
from common.settings import EnvSettings, load_settings
from start.logic import parse_message_body, start_request


class StartSettings(EnvSettings):
    state_machine_arn: str = Field(alias="STATE_MACHINE_ARN", min_length=1)


class UnusableUploadEvent(Exception):
    """A message that can never start a run; failing it sends it on to the start DLQ after its retries."""


def start_upload(record: SQSRecord, state_machine_arn: str) -> None:
    """Start the run one queued upload event asks for; raising fails this message alone."""
    try:
        request = start_request(parse_message_body(record.body))
    except ValueError as error:
        logger.error("unusable upload event", extra={"messageId": record.message_id, "reason": str(error)})
        raise UnusableUploadEvent(str(error)) from None
    try:
        client("stepfunctions").start_execution(
            stateMachineArn=state_machine_arn, name=request.execution_name, input=json.dumps(request.input)
        )
    except Exception as error:
        if error_code(error) == "ExecutionAlreadyExists":
            logger.info("duplicate upload event ignored", extra={"executionName": request.execution_name})
            return
        logger.exception(
            "could not start execution",
            extra={"messageId": record.message_id, "executionName": request.execution_name},
        )
        raise
    logger.info("execution started", extra={"executionName": request.execution_name})


def batch_processor() -> BatchProcessor:
    # A batch whose every message fails is still answered message by message: raising instead would be a
    # function error, which SQS retries the same way but the function-errors alarm counts as a defect.
    return BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@instrumented("start")
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    record_handler = partial(start_upload, state_machine_arn=load_settings(StartSettings).state_machine_arn)
    return dict(process_partial_response(event, record_handler, batch_processor(), context))
