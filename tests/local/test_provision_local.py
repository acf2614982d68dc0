"""What the provisioner builds for the local runtime: local origins, the HTTP API, mappings, warnings."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from filepipe.provision import LocalSite, Stack, provision
from filepipe.template import load_template

REGION = "us-east-1"
SITE = LocalSite(web_origin="http://127.0.0.1:8000", api_origin="http://127.0.0.1:8001")


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


@pytest.fixture(scope="module")
def local_stack() -> Iterator[Stack]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        with mock_aws(config={"lambda": {"use_docker": False}}):
            yield provision(
                client,
                load_template(),
                "filepipe-local",
                REGION,
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
    assert len(routes) == 11
    assert routes["POST /uploads"].authorizer == "UserPoolJwt"
    assert routes["POST /uploads"].function_arn == local_stack.functions["ApiFunction"].arn
    assert routes["GET /shares/{token}"].authorizer is None
    assert routes["GET /shares/{token}"].function_arn == local_stack.functions["ShareApiFunction"].arn
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
    template = tmp_path / "template.yaml"
    template.write_text(
        textwrap.dedent(
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
    )
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        stack = provision(client, load_template(template), "small", REGION)
    assert (
        "AWS::DynamoDB::Table property ContributorInsightsSpecification is not emulated locally: Table"
        in (stack.warnings)
    )
    assert "AWS::EC2::VPC is not emulated locally: Network" in stack.warnings


SCHEDULES = """
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Queue:
    Type: AWS::SQS::Queue
  Nightly:
    Type: AWS::Events::Rule
    Properties:
      ScheduleExpression: {rule}
      Targets: [{{Id: queue, Arn: !GetAtt Queue.Arn}}]
  Weekdays:
    Type: AWS::Scheduler::Schedule
    Properties:
      ScheduleExpression: cron(30 9 ? * MON-FRI *)
      ScheduleExpressionTimezone: Europe/Berlin
      StartDate: "{start_date}"
      FlexibleTimeWindow: {{Mode: "OFF"}}
      Target: {{Arn: !GetAtt Queue.Arn, RoleArn: arn:aws:iam::123456789012:role/scheduler}}
"""


def _next_monday(days_ahead: int) -> datetime:
    """Midnight UTC of the first Monday at least ``days_ahead`` days from now: a start date AWS accepts."""
    day = (datetime.now(UTC) + timedelta(days=days_ahead)).replace(hour=0, minute=0, second=0, microsecond=0)
    return day + timedelta(days=-day.weekday() % 7)


def _provision_schedules(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    rule: str,
    start: datetime | None = None,
    stack_name: str = "timed",
) -> Stack:
    start = start or _next_monday(days_ahead=7)
    text = SCHEDULES.format(rule=rule, start_date=start.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return _provision_text(tmp_path, monkeypatch, text, stack_name)


def _provision_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, stack_name: str) -> Stack:
    template = tmp_path / "template.yaml"
    template.write_text(text)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        return provision(client, load_template(template), stack_name, REGION)


def test_cron_schedules_run_locally_in_their_time_zone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monday = _next_monday(days_ahead=7)
    stack = _provision_schedules(tmp_path, monkeypatch, "cron(0 2 * * ? *)", start=monday)
    assert not [w for w in stack.warnings if "cron" in w or "schedule" in w.lower()]
    weekdays = stack.schedules["Weekdays"]
    assert (weekdays.timezone, weekdays.start_date) == (
        "Europe/Berlin",
        monday.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    # Nothing runs before the start date: the first run is that Monday, 09:30 in Berlin.
    first = weekdays.timing().next_after(monday - timedelta(days=3))
    berlin = ZoneInfo("Europe/Berlin")
    assert first == datetime.combine(monday.date(), time(9, 30), tzinfo=berlin).astimezone(UTC)
    nightly = stack.schedules["Nightly/queue"]
    assert nightly.timing().next_after(datetime(2026, 11, 22, 3, tzinfo=UTC)) == datetime(
        2026, 11, 23, 2, tzinfo=UTC
    )


def test_a_schedule_eventbridge_would_refuse_stops_the_deployment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(
        ValueError, match=r"Nightly: invalid schedule 'cron\(0 2 \* \* \* \*\)': exactly one of"
    ):
        _provision_schedules(tmp_path, monkeypatch, "cron(0 2 * * * *)")


def test_a_start_date_in_the_past_stops_the_deployment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # EventBridge Scheduler refuses a StartDate more than 5 minutes in the past, as a deploy would.
    yesterday = datetime.now(UTC) - timedelta(days=1)
    with pytest.raises(ClientError) as refused:
        _provision_schedules(tmp_path, monkeypatch, "cron(0 2 * * ? *)", start=yesterday, stack_name="late")
    assert refused.value.response["Error"]["Code"] == "ValidationException"


def _errors_alarm(logical: str, metrics: int) -> str:
    queries = "".join(
        f"""
        - Id: m{number}
          ReturnData: false
          MetricStat:
            Metric:
              Namespace: AWS/Lambda
              MetricName: Errors
              Dimensions: [{{Name: FunctionName, Value: f{number}}}]
            Period: 300
            Stat: Sum"""
        for number in range(metrics)
    )
    ids = ", ".join(f"m{number}" for number in range(metrics))
    return f"""
  {logical}:
    Type: AWS::CloudWatch::Alarm
    Properties:
      EvaluationPeriods: 1
      Threshold: 0
      ComparisonOperator: GreaterThanThreshold
      Metrics:
        - Id: total
          Expression: SUM([{ids}])
          ReturnData: true{queries}
"""


def test_an_alarm_over_cloudwatchs_metric_limit_stops_the_deployment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 9 metrics and the expression make 10 queries: accepted. One more is what rolled the stack back.
    fits = _provision_text(tmp_path, monkeypatch, "Resources:" + _errors_alarm("Fits", 9), "fits")
    assert "Fits" in fits.physical
    with pytest.raises(ValueError, match=r"Over: CloudWatch takes at most 10 metrics per alarm"):
        _provision_text(tmp_path, monkeypatch, "Resources:" + _errors_alarm("Over", 10), "over")


def test_a_composite_alarm_must_name_alarms_that_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    composite = """
  Any:
    Type: AWS::CloudWatch::CompositeAlarm
    Properties:
      AlarmRule: !Sub "ALARM(${Fits}) OR ALARM(gone-alarm)"
"""
    with pytest.raises(ValueError, match=r"Any: AlarmRule names alarms that do not exist: gone-alarm"):
        _provision_text(tmp_path, monkeypatch, "Resources:" + _errors_alarm("Fits", 2) + composite, "gone")


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


ALARM_TO_TOPIC = """
Resources:
  Key:
    Type: AWS::KMS::Key
    Properties:
      KeyPolicy:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {{AWS: !Sub "arn:aws:iam::${{AWS::AccountId}}:root"}}
            Action: kms:*
            Resource: "*"
{cloudwatch_statement}
  Topic:
    Type: AWS::SNS::Topic
    Properties:
      KmsMasterKeyId: {key}
  Alarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Namespace: AWS/SQS
      MetricName: ApproximateNumberOfMessagesVisible
      Statistic: Maximum
      Period: 300
      EvaluationPeriods: 1
      Threshold: 0
      ComparisonOperator: GreaterThanThreshold
      AlarmActions: [!Ref Topic]
"""
CLOUDWATCH_MAY_USE_THE_KEY = """
          - Effect: Allow
            Principal: {Service: cloudwatch.amazonaws.com}
            Action: [kms:Decrypt, kms:GenerateDataKey*]
            Resource: "*"
"""


@pytest.mark.parametrize(
    ("key", "cloudwatch_statement"),
    [("alias/aws/sns", ""), ("!Ref Key", "")],
    ids=["aws-managed-key", "key-policy-without-cloudwatch"],
)
def test_alarms_cannot_notify_a_topic_whose_key_cloudwatch_cannot_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str, cloudwatch_statement: str
) -> None:
    text = ALARM_TO_TOPIC.format(key=key, cloudwatch_statement=cloudwatch_statement)
    with pytest.raises(ValueError, match=r"Alarm: notifies .* dropped silently"):
        _provision_text(tmp_path, monkeypatch, text, "dropped")


def test_alarms_notify_a_topic_whose_key_policy_lets_cloudwatch_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = ALARM_TO_TOPIC.format(key="!Ref Key", cloudwatch_statement=CLOUDWATCH_MAY_USE_THE_KEY)
    stack = _provision_text(tmp_path, monkeypatch, text, "delivered")
    assert "Alarm" in stack.physical
