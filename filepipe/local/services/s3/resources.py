"""S3 resources: buckets (versioning, encryption, lifecycle and CORS rules, logging) and bucket policies."""

from __future__ import annotations

import json
from typing import Any

from filepipe.local.stack.context import Created, Properties, Provisioning, ServiceHandlers
from filepipe.local.stack.tags import tag_list

HANDLERS = ServiceHandlers()


@HANDLERS.register("AWS::S3::Bucket")
def create_bucket(provisioning: Provisioning, logical: str, props: Properties) -> Created:
    s3 = provisioning.client("s3")
    name = props.get("BucketName") or provisioning.name(logical, lower=True)
    s3.create_bucket(Bucket=name)
    if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    if "BucketEncryption" in props:
        rules = [
            {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
            for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        ]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    if "PublicAccessBlockConfiguration" in props:
        s3.put_public_access_block(
            Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
        )
    if "LifecycleConfiguration" in props:
        s3.put_bucket_lifecycle_configuration(
            Bucket=name,
            LifecycleConfiguration={
                "Rules": [_lifecycle_rule(rule) for rule in props["LifecycleConfiguration"]["Rules"]]
            },
        )
        provisioning.warn("lifecycle rules are stored; objects are not expired locally", logical)
    if "CorsConfiguration" in props:
        s3.put_bucket_cors(
            Bucket=name,
            CORSConfiguration={
                "CORSRules": [_cors_rule(rule) for rule in props["CorsConfiguration"]["CorsRules"]]
            },
        )
    if "Tags" in props:
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tag_list(props["Tags"])})
    if "OwnershipControls" in props:
        s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=props["OwnershipControls"])
    if "LoggingConfiguration" in props:
        # moto checks, as S3 does, that the target bucket's policy lets the logging service write.
        logging = props["LoggingConfiguration"]
        s3.put_bucket_logging(
            Bucket=name,
            BucketLoggingStatus={
                "LoggingEnabled": {
                    "TargetBucket": logging.get("DestinationBucketName", name),
                    "TargetPrefix": logging.get("LogFilePrefix", ""),
                }
            },
        )
        provisioning.warn(
            "S3 server access logging is configured; no log records are written locally", logical
        )
    notifications = props.get("NotificationConfiguration", {})
    if notifications.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
        s3.put_bucket_notification_configuration(
            Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
        )
    for unsupported in sorted(set(notifications) - {"EventBridgeConfiguration"}):
        provisioning.warn(f"S3 NotificationConfiguration.{unsupported} is not emulated locally", logical)
    return name, {
        "Arn": f"arn:aws:s3:::{name}",
        "DomainName": f"{name}.s3.amazonaws.com",
        "RegionalDomainName": f"{name}.s3.{provisioning.stack.region}.amazonaws.com",
    }


@HANDLERS.register("AWS::S3::BucketPolicy")
def create_bucket_policy(provisioning: Provisioning, logical: str, props: Properties) -> Created:
    document = dict(props["PolicyDocument"])
    if not provisioning.iam_enforced:
        # moto's own check ignores conditions, so a conditional Deny (TLS only, say) would refuse every
        # request; without the runtime's IAM evaluation such statements stay out of moto.
        document["Statement"] = [
            statement
            for statement in document["Statement"]
            if not (statement.get("Effect") == "Deny" and "Condition" in statement)
        ]
        provisioning.warn(
            "bucket policies are stored but not enforced locally (conditional denials not even stored)",
            logical,
        )
    if document["Statement"]:
        provisioning.client("s3").put_bucket_policy(Bucket=props["Bucket"], Policy=json.dumps(document))
    return props["Bucket"], {}


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {"ID": rule.get("Id", "rule"), "Status": rule["Status"]}
    converted["Filter"] = {"Prefix": rule.get("Prefix", "")}
    if "ExpirationInDays" in rule:
        converted["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "NoncurrentVersionExpiration" in rule:
        converted["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
        }
    if "ExpiredObjectDeleteMarker" in rule:
        if "ExpirationInDays" in rule:
            # S3 refuses the pair: a delete marker expires on its own rule, not after a number of days.
            raise ValueError(
                f"lifecycle rule {converted['ID']}: ExpiredObjectDeleteMarker with ExpirationInDays"
            )
        converted["Expiration"] = {"ExpiredObjectDeleteMarker": bool(rule["ExpiredObjectDeleteMarker"])}
    if "AbortIncompleteMultipartUpload" in rule:
        converted["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        }
    return converted


def _cors_rule(rule: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {
        "AllowedMethods": rule["AllowedMethods"],
        "AllowedOrigins": rule["AllowedOrigins"],
    }
    if "AllowedHeaders" in rule:
        converted["AllowedHeaders"] = rule["AllowedHeaders"]
    if "ExposedHeaders" in rule:
        converted["ExposeHeaders"] = rule["ExposedHeaders"]
    if "MaxAge" in rule:
        converted["MaxAgeSeconds"] = int(rule["MaxAge"])
    return converted
