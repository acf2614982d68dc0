"""Per-service rules: which IAM actions on which resources a request needs, by signing name."""

from __future__ import annotations

from collections.abc import Callable

from filepipe.local.iam.calls import Call, Needs
from filepipe.local.iam.services import (
    awslambda,
    cloudwatch,
    dynamodb,
    events,
    generic,
    iam,
    kms,
    logs,
    ses,
    sns,
    sqs,
    states,
    sts,
    xray,
)

Rules = Callable[[Call], Needs]

# S3 is not here: its rules need the account's bucket policies (filepipe.local.iam.services.s3.rules).
BY_SIGNING_NAME: dict[str, Rules] = {
    "dynamodb": dynamodb.needs,
    "sqs": sqs.needs,
    "sns": sns.needs,
    "states": states.needs,
    "lambda": awslambda.needs,
    "events": events.needs,
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
