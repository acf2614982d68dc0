"""Per-service rules: which IAM actions on which resources a request needs, by signing name."""

from __future__ import annotations

from collections.abc import Callable

from filepipe.local.iam import generic
from filepipe.local.iam.calls import Call, Needs
from filepipe.local.services.awslambda import access as awslambda
from filepipe.local.services.cloudwatch import access as cloudwatch
from filepipe.local.services.dynamodb import access as dynamodb
from filepipe.local.services.events import access as events
from filepipe.local.services.guardduty import access as guardduty
from filepipe.local.services.iam import access as iam
from filepipe.local.services.kms import access as kms
from filepipe.local.services.logs import access as logs
from filepipe.local.services.ses import access as ses
from filepipe.local.services.sns import access as sns
from filepipe.local.services.sqs import access as sqs
from filepipe.local.services.stepfunctions import access as states
from filepipe.local.services.sts import access as sts
from filepipe.local.services.xray import access as xray

Rules = Callable[[Call], Needs]

# S3 is not here: its rules need the account's bucket policies (filepipe.local.services.s3.access.rules).
BY_SIGNING_NAME: dict[str, Rules] = {
    "dynamodb": dynamodb.needs,
    "sqs": sqs.needs,
    "sns": sns.needs,
    "states": states.needs,
    "lambda": awslambda.needs,
    "events": events.needs,
    "guardduty": guardduty.needs,
    "ses": ses.needs,
    "email": ses.needs,
    "kms": kms.needs,
    "monitoring": cloudwatch.needs,
    "logs": logs.needs,
    "xray": xray.needs,
    "sts": sts.needs,
    "iam": iam.needs,
}


def rules_for(service: str) -> Rules:
    return BY_SIGNING_NAME.get(service, generic.needs)
