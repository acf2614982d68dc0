"""Which handler creates each CloudFormation resource type: one resources module per AWS service."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from filepipe.local.services.apigateway import resources as apigateway
from filepipe.local.services.awslambda import resources as awslambda
from filepipe.local.services.cloudfront import resources as cloudfront
from filepipe.local.services.cloudwatch import resources as cloudwatch
from filepipe.local.services.cognito import resources as cognito
from filepipe.local.services.dynamodb import resources as dynamodb
from filepipe.local.services.events import resources as events
from filepipe.local.services.guardduty import resources as guardduty
from filepipe.local.services.iam import resources as iam
from filepipe.local.services.kms import resources as kms
from filepipe.local.services.logs import resources as logs
from filepipe.local.services.s3 import resources as s3
from filepipe.local.services.scheduler import resources as scheduler
from filepipe.local.services.ses import resources as ses
from filepipe.local.services.sns import resources as sns
from filepipe.local.services.sqs import resources as sqs
from filepipe.local.services.stepfunctions import resources as stepfunctions
from filepipe.local.stack.context import Handler, ServiceHandlers

# A new service's resources module goes in this list (and its import above).
SERVICES: tuple[ServiceHandlers, ...] = (
    apigateway.HANDLERS,
    awslambda.HANDLERS,
    cloudfront.HANDLERS,
    cloudwatch.HANDLERS,
    cognito.HANDLERS,
    dynamodb.HANDLERS,
    events.HANDLERS,
    guardduty.HANDLERS,
    iam.HANDLERS,
    kms.HANDLERS,
    logs.HANDLERS,
    s3.HANDLERS,
    scheduler.HANDLERS,
    ses.HANDLERS,
    sns.HANDLERS,
    sqs.HANDLERS,
    stepfunctions.HANDLERS,
)


def _by_type(services: tuple[ServiceHandlers, ...]) -> dict[str, Handler]:
    handlers: dict[str, Handler] = {}
    for service in services:
        for resource_type, handler in service.items():
            if resource_type in handlers:
                raise ValueError(
                    f"{resource_type} is handled in {handlers[resource_type].__module__} "
                    f"and in {handler.__module__}"
                )
            handlers[resource_type] = handler
    return handlers


HANDLERS: Mapping[str, Handler] = MappingProxyType(_by_type(SERVICES))
