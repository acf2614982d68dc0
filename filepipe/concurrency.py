"""The deploy's PipelineConcurrency from the account's Lambda concurrency, so the deploy cannot fail."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

# Lambda refuses a reservation that leaves fewer than this unreserved in the account and region.
LAMBDA_MINIMUM_UNRESERVED = 100
# The template's functions that PipelineConcurrency reserves for, each, per Scanner: Validate, Thumbnails
# and Metadata always, and the ClamAV scan function when it exists.
RESERVING_FUNCTIONS = {"GuardDuty": 3, "ClamAV": 4}
# A stack deployed before the Scanner parameter existed scanned with ClamAV.
SCANNER_BEFORE_THE_PARAMETER = "ClamAV"
# Each reserving function takes at most this share of what is left above Lambda's minimum ...
SHARE_PER_FUNCTION = 20
# ... and never more than this: beyond it a burst of scans would crowd the API again.
MAX_PER_FUNCTION = 50


def pipeline_concurrency(unreserved: int, reserved_by_this_stack: int) -> int:
    """Per-function reservation: 0 when the account cannot spare any (new accounts start with a quota of 10).

    ``unreserved`` is the account's UnreservedConcurrentExecutions, which already excludes what this stack
    reserved at its last deploy (``reserved_by_this_stack`` in all), so a redeploy picks the same value.
    """
    spare = unreserved + reserved_by_this_stack - LAMBDA_MINIMUM_UNRESERVED
    return max(0, min(MAX_PER_FUNCTION, spare // SHARE_PER_FUNCTION))


def reserved_now(cloudformation: Any, stack_name: str) -> int:
    """What the stack reserves now, in all: PipelineConcurrency times the functions its Scanner reserves for
    (0 when the stack does not exist yet)."""
    try:
        [stack] = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except cloudformation.exceptions.ClientError as error:
        if error.response["Error"]["Code"] == "ValidationError":  # CloudFormation's answer for no such stack
            return 0
        raise
    values = {p["ParameterKey"]: p.get("ParameterValue", "0") for p in stack.get("Parameters", [])}
    scanner = values.get("Scanner") or SCANNER_BEFORE_THE_PARAMETER
    return int(values.get("PipelineConcurrency") or 0) * RESERVING_FUNCTIONS[scanner]


def for_stack(lambda_client: Any, cloudformation: Any, stack_name: str) -> int:
    unreserved = int(lambda_client.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"])
    return pipeline_concurrency(unreserved, reserved_now(cloudformation, stack_name))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m filepipe.concurrency", description=__doc__)
    parser.add_argument("--stack", required=True)
    parser.add_argument("--region")
    args = parser.parse_args(argv)
    import boto3

    session = boto3.session.Session(region_name=args.region)
    print(for_stack(session.client("lambda"), session.client("cloudformation"), args.stack))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
