"""What the provisioner builds from template.yaml for the local runtime: origins, the HTTP API, warnings."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto import mock_aws

from filepipe.local.provision.provisioner import provision
from filepipe.local.stack.model import LocalSite, Stack
from filepipe.openapi import DOCUMENT_PATH
from filepipe.template import load_template
from tests.local.provisioning import REGION, client, provision_text

SITE = LocalSite(web_origin="http://127.0.0.1:8000", api_origin="http://127.0.0.1:8001")


@pytest.fixture(scope="module")
def local_stack() -> Iterator[Stack]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        with mock_aws(config={"lambda": {"use_docker": False}}):
            # ClamAV mode: the one with an image function and a schedule (its definitions update).
            yield provision(
                client,
                load_template(),
                "filepipe-local",
                REGION,
                {"Scanner": "ClamAV"},
                site=SITE,
                create_event_source_mappings=True,
            )


def test_cloudfront_origins_become_the_local_web_origin(local_stack: Stack) -> None:
    rules = client("s3").get_bucket_cors(Bucket=local_stack.physical["IngestBucket"])["CORSRules"]
    assert rules[0]["AllowedOrigins"] == [SITE.web_origin]
    assert local_stack.http_apis["HttpApi"].cors["AllowOrigins"] == [SITE.web_origin]  # type: ignore[index]
    assert local_stack.outputs["WebUrl"] == SITE.web_origin
    assert any(
        w.startswith("CloudFront is not emulated") and "SiteDistribution" in w for w in local_stack.warnings
    )


def test_the_http_api_is_created_and_its_routes_recorded(local_stack: Stack) -> None:
    api = local_stack.http_apis["HttpApi"]
    routes = {route.route_key: route for route in api.routes}
    documented = json.loads(DOCUMENT_PATH.read_text(encoding="utf-8"))["paths"]
    # Every route the template gives API Gateway is one the API document describes, and no other.
    assert set(routes) == {f"{method.upper()} {path}" for path, item in documented.items() for method in item}
    assert routes["POST /uploads"].authorizer == "UserPoolJwt"
    assert routes["POST /uploads"].function_arn == local_stack.functions["ApiFunction"].arn
    assert routes["GET /shares/{token}"].authorizer is None
    assert routes["GET /shares/{token}"].function_arn == local_stack.functions["ShareApiFunction"].arn
    assert routes["POST /shares/{token}/unlock"].authorizer is None
    assert routes["PATCH /shares/{token}"].authorizer == "UserPoolJwt"
    assert routes["PATCH /shares/{token}"].function_arn == local_stack.functions["ApiFunction"].arn
    assert routes["POST /requests/{token}/uploads"].authorizer is None
    assert (
        routes["POST /requests/{token}/uploads"].function_arn == local_stack.functions["ShareApiFunction"].arn
    )
    assert routes["DELETE /requests/{token}"].authorizer == "UserPoolJwt"
    authorizer = api.authorizers["UserPoolJwt"]
    assert authorizer.issuer.endswith("/" + local_stack.physical["UserPool"])
    assert authorizer.audiences == (local_stack.physical["UserPoolClient"],)
    assert "$default" in api.stages

    listed = client("apigatewayv2").get_routes(ApiId=api.api_id)["Items"]
    kinds = {item["RouteKey"]: item["AuthorizationType"] for item in listed}
    assert kinds["POST /uploads"] == "JWT"
    assert kinds["POST /shares/{token}/download"] == "NONE"
    assert local_stack.attributes["HttpApi"]["ApiEndpoint"] == SITE.api_origin
    assert local_stack.outputs["ApiUrl"] == SITE.api_origin


def test_the_sqs_mapping_and_the_schedule_exist(local_stack: Stack) -> None:
    mapping = local_stack.event_source_mappings["StartFunctionUploads"]
    assert mapping.report_batch_item_failures
    assert mapping.batch_size == 10
    assert mapping.queue_arn == local_stack.attributes["StartQueue"]["Arn"]
    listed = client("lambda").list_event_source_mappings()["EventSourceMappings"]
    assert [m["UUID"] for m in listed] == [mapping.uuid]
    schedule = local_stack.schedules["DefinitionsUpdateFunctionEvery3Hours"]
    assert schedule.expression == "rate(3 hours)"
    assert schedule.target["Arn"] == local_stack.functions["DefinitionsUpdateFunction"].arn
    assert schedule.target["RetryPolicy"] == {"MaximumRetryAttempts": 2}
    assert client("scheduler").list_schedules()["Schedules"][0]["Name"] == schedule.name


def test_functions_carry_what_the_runner_needs(local_stack: Stack) -> None:
    scan = local_stack.functions["ScanFunction"]
    assert (scan.timeout, scan.memory_mb, scan.handler) == (300, 3008, "scan.handler.lambda_handler")
    assert scan.environment["CLAMD_ADDRESS"] == "embedded"
    assert scan.code_path.name == "functions"


def test_warnings_come_one_line_per_gap(local_stack: Stack) -> None:
    assert len(local_stack.warnings) == len(set(local_stack.warnings))
    tracing = [w for w in local_stack.warnings if w.startswith("X-Ray tracing is not emulated")]
    assert len(tracing) == 1
    assert "ScanFunction" in tracing[0]
    assert "ProcessUploadStateMachine" in tracing[0]


def test_nothing_is_dropped_silently(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = textwrap.dedent(
        """
        AWSTemplateFormatVersion: "2010-09-09"
        Resources:
          Table:
            Type: AWS::DynamoDB::Table
            Properties:
              BillingMode: PAY_PER_REQUEST
              AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
              KeySchema: [{AttributeName: pk, KeyType: HASH}]
              ContributorInsightsSpecification: {Enabled: true}
          Network:
            Type: AWS::EC2::VPC
            Properties:
              CidrBlock: 10.0.0.0/16
        """
    )
    stack = provision_text(tmp_path, monkeypatch, text, "small")
    assert (
        "AWS::DynamoDB::Table property ContributorInsightsSpecification is not emulated locally: Table"
        in (stack.warnings)
    )
    assert "AWS::EC2::VPC is not emulated locally: Network" in stack.warnings


def test_the_function_errors_alarm_covers_every_function(local_stack: Stack) -> None:
    alarms = client("cloudwatch").describe_alarms()["MetricAlarms"]
    by_function = {
        dimension["Value"]: alarm
        for alarm in alarms
        if alarm.get("MetricName") == "Errors"
        for dimension in alarm["Dimensions"]
    }
    assert set(by_function) == {spec.name for spec in local_stack.functions.values()}
    assert all(len(alarm.get("Metrics", [])) <= 10 for alarm in alarms)
