"""The deploy's PipelineConcurrency: never more than the account can reserve, the same on every redeploy."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from filepipe.concurrency import for_stack, pipeline_concurrency


@pytest.mark.parametrize(
    ("unreserved", "expected"),
    [
        (10, 0),  # a new account: Lambda would refuse any reservation
        (100, 0),
        (119, 0),
        (120, 1),
        (500, 20),
        (1000, 45),
        (3000, 50),  # capped, so the API keeps most of a large quota
    ],
)
def test_a_reservation_always_leaves_lambdas_minimum_unreserved(unreserved: int, expected: int) -> None:
    assert pipeline_concurrency(unreserved, 0) == expected
    assert unreserved - 4 * expected >= min(unreserved, 100)


def _clients(unreserved: int, stack_parameters: list[dict[str, str]] | None) -> tuple[Any, Any, list[Any]]:
    lambda_client = boto3.client("lambda", region_name="us-east-1")
    cloudformation = boto3.client("cloudformation", region_name="us-east-1")
    lambda_stub, cfn_stub = Stubber(lambda_client), Stubber(cloudformation)
    lambda_stub.add_response(
        "get_account_settings",
        {"AccountLimit": {"ConcurrentExecutions": 1000, "UnreservedConcurrentExecutions": unreserved}},
    )
    if stack_parameters is None:
        cfn_stub.add_client_error(
            "describe_stacks",
            service_error_code="ValidationError",
            service_message="Stack with id x does not exist",
        )
    else:
        cfn_stub.add_response(
            "describe_stacks",
            {
                "Stacks": [
                    {
                        "StackName": "filepipe",
                        "CreationTime": "2026-01-01T00:00:00Z",
                        "StackStatus": "UPDATE_COMPLETE",
                        "Parameters": stack_parameters,
                    }
                ]
            },
        )
    return lambda_client, cloudformation, [lambda_stub, cfn_stub]


def test_the_first_deploy_and_a_redeploy_choose_the_same_value(aws_env: None) -> None:
    lambda_client, cloudformation, stubs = _clients(1000, None)
    with stubs[0], stubs[1]:
        first = for_stack(lambda_client, cloudformation, "filepipe")
    # After that deploy the account shows 3 or 4 x first fewer unreserved (GuardDuty mode has no scan
    # function to reserve for); the stack's own share counts back.
    for scanner, functions in (("GuardDuty", 3), ("ClamAV", 4), (None, 4)):
        parameters = [{"ParameterKey": "PipelineConcurrency", "ParameterValue": str(first)}]
        if scanner:
            parameters.append({"ParameterKey": "Scanner", "ParameterValue": scanner})
        lambda_client, cloudformation, stubs = _clients(1000 - functions * first, parameters)
        with stubs[0], stubs[1]:
            assert for_stack(lambda_client, cloudformation, "filepipe") == first == 45
