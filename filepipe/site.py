"""Publish the web UI: config.json from the stack's outputs, the files to the site bucket, a fresh cache."""

from __future__ import annotations

import argparse
import json
import mimetypes
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from filepipe.template import ROOT

FRONTEND = ROOT / "frontend"
# The page and its config must never be served stale; hashed-free assets get a short lifetime.
NO_CACHE = "no-cache, max-age=0"
SHORT_CACHE = "public, max-age=300"


def site_config(
    outputs: Mapping[str, Any], region: str, cognito_endpoint: str | None = None
) -> dict[str, Any]:
    """What the web UI reads from /config.json, the same on AWS and locally."""
    allowed = str(outputs.get("AllowedTypes", ""))
    return {
        "apiUrl": str(outputs["ApiUrl"]).rstrip("/"),
        "region": region,
        "userPoolId": outputs["UserPoolId"],
        "userPoolClientId": outputs["UserPoolClientId"],
        "cognitoEndpoint": cognito_endpoint or f"https://cognito-idp.{region}.amazonaws.com/",
        "maxFileBytes": int(outputs["MaxFileBytes"]) if outputs.get("MaxFileBytes") else None,
        "allowedTypes": [t.strip() for t in allowed.split(",") if t.strip()],
    }


def stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    [stack] = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def publish(s3: Any, bucket: str, config: Mapping[str, Any], frontend: Path = FRONTEND) -> list[str]:
    """Upload the site and its config, then remove objects no longer part of it; returns the keys."""
    keys: list[str] = []
    for path in sorted(p for p in frontend.rglob("*") if p.is_file()):
        key = path.relative_to(frontend).as_posix()
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        cache = NO_CACHE if key == "index.html" else SHORT_CACHE
        s3.put_object(
            Bucket=bucket, Key=key, Body=path.read_bytes(), ContentType=content_type, CacheControl=cache
        )
        keys.append(key)
    s3.put_object(
        Bucket=bucket,
        Key="config.json",
        Body=json.dumps(config, indent=2).encode(),
        ContentType="application/json",
        CacheControl=NO_CACHE,
    )
    keys.append("config.json")
    stale = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        stale += [item["Key"] for item in page.get("Contents", []) if item["Key"] not in keys]
    if stale:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key} for key in stale], "Quiet": True})
    return keys


def invalidate(cloudfront: Any, distribution_id: str) -> str:
    response = cloudfront.create_invalidation(
        DistributionId=distribution_id,
        InvalidationBatch={"Paths": {"Quantity": 1, "Items": ["/*"]}, "CallerReference": str(time.time_ns())},
    )
    return str(response["Invalidation"]["Id"])


def start_definitions_update(awslambda: Any, outputs: Mapping[str, str]) -> bool:
    """Run the ClamAV definitions update once, in ClamAV mode (the only one with the function).

    Until its first scheduled run the definitions bucket is empty and every scan fails closed; GuardDuty
    keeps its own definitions.
    """
    function = outputs.get("DefinitionsUpdateFunctionName")
    if not function:
        return False
    awslambda.invoke(FunctionName=function, InvocationType="Event")
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m filepipe.site", description=__doc__)
    parser.add_argument("--stack", required=True, help="the deployed stack's name")
    parser.add_argument("--region", help="its region (default: the SDK's)")
    parser.add_argument(
        "--skip-definitions", action="store_true", help="do not run the virus definitions update once"
    )
    args = parser.parse_args(argv)

    import boto3

    session = boto3.session.Session(region_name=args.region)
    region = session.region_name or "us-east-1"
    outputs = stack_outputs(session.client("cloudformation"), args.stack)
    keys = publish(session.client("s3"), outputs["SiteBucketName"], site_config(outputs, region))
    invalidation = invalidate(session.client("cloudfront"), outputs["SiteDistributionId"])
    print(f"published {len(keys)} files to {outputs['SiteBucketName']} (invalidation {invalidation})")
    if not args.skip_definitions and start_definitions_update(session.client("lambda"), outputs):
        print("virus definitions update started")
    print(f"web UI: {outputs['WebUrl']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
