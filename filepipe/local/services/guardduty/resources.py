"""GuardDuty resources: Malware Protection plans, refused at provisioning where GuardDuty refuses them."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from filepipe.local.services.guardduty.plans import GuardDutyError, bad_request, create_plan
from filepipe.local.stack.context import Created, Properties, Provisioning, ServiceHandlers
from filepipe.template import PSEUDO_ACCOUNT_ID

HANDLERS = ServiceHandlers()


def _refused(logical: str, error: GuardDutyError) -> ValueError:
    return ValueError(f"{logical}: GuardDuty refuses it ({error.code}): {error.message}")


@HANDLERS.register("AWS::GuardDuty::MalwareProtectionPlan")
def create_malware_protection_plan(provisioning: Provisioning, logical: str, props: Properties) -> Created:
    """Ref is the plan's id, as CloudFormation gives it (the schema's primary identifier); GetAtt reads Arn,
    CreatedAt, MalwareProtectionPlanId, Status and StatusReasons.

    The role and the bucket must exist (CreateMalwareProtectionPlan answers BadRequestException), a bucket
    has one plan; whether GuardDuty may assume the role is decided after provisioning, with the IAM the
    runtime enforces (``protection.check_plan_roles``), as Lambda's roles are.
    """
    role_arn = str(props["Role"])
    s3_bucket: dict[str, Any] = props["ProtectedResource"]["S3Bucket"]
    bucket = str(s3_bucket["BucketName"])
    tagging = props.get("Actions", {}).get("Tagging", {}).get("Status", "DISABLED")
    props.get("Tags")  # the plan's own tags change nothing the runtime does
    try:
        provisioning.client("iam").get_role(RoleName=role_arn.rsplit("/", 1)[-1])
    except ClientError as error:
        raise _refused(logical, bad_request(f"The role {role_arn} does not exist.")) from error
    try:
        provisioning.client("s3").head_bucket(Bucket=bucket)
    except ClientError as error:
        raise _refused(logical, bad_request(f"The bucket {bucket} does not exist.")) from error
    try:
        plan = create_plan(
            PSEUDO_ACCOUNT_ID,
            provisioning.stack.region,
            role_arn=role_arn,
            bucket=bucket,
            object_prefixes=[str(prefix) for prefix in s3_bucket.get("ObjectPrefixes", [])],
            tagging_status=str(tagging),
        )
    except GuardDutyError as error:
        raise _refused(logical, error) from error
    provisioning.warn(
        "GuardDuty Malware Protection scans with the local clamd; GuardDuty's engines, scan latency, plan "
        "status and managed EventBridge rule are not emulated",
        logical,
    )
    return plan.plan_id, plan.attributes()
